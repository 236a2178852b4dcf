//! The OpenAPI 3.1 description of the HTTP API, served at `GET /api/openapi.json`
//! and generated from the route list ([`Operation`]): each operation's
//! parameters, answers and the schemas of their bodies.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem, PathsBuilder,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Ref, RefOr,
    ResponseBuilder, Schema,
};
use utoipa::ToSchema;

use crate::routes::{Function, In, Operation};

/// The schemas an answer's body refers to, by name, gathered as the
/// description is made.
pub type Schemas = Vec<(String, RefOr<Schema>)>;

/// A success answer: `data` is the route's figures.
#[derive(Debug, Serialize, ToSchema)]
pub struct Success<T> {
    /// Always `true`.
    pub success: bool,
    pub data: T,
    pub timestamp: DateTime<Utc>,
}

/// An error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Failure {
    /// Always `false`.
    pub success: bool,
    pub error: FailureDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FailureDetail {
    /// Machine-readable: `unauthorized`, `invalid_parameter`, `not_found`,
    /// `store_unavailable`, …
    pub code: String,
    /// For a person.
    pub message: String,
}

/// `T` as a named schema: registered with what it refers to, and referred to.
pub fn named<T: ToSchema>(schemas: &mut Schemas) -> RefOr<Schema> {
    T::schemas(schemas);
    schemas.push((T::name().into_owned(), T::schema()));
    RefOr::Ref(Ref::from_schema_name(T::name()))
}

/// `{success: true, data: T, timestamp}` as a named schema, `Success_T`.
pub fn success<T: ToSchema>(schemas: &mut Schemas) -> RefOr<Schema> {
    named::<T>(schemas);
    let name = format!("Success_{}", T::name());
    <Success<T> as ToSchema>::schemas(schemas);
    schemas.push((
        name.clone(),
        <Success<T> as utoipa::PartialSchema>::schema(),
    ));
    RefOr::Ref(Ref::from_schema_name(name))
}

const DESCRIPTION: &str = "WhatsApp Business webhooks in, metrics out. Data routes take \
`Authorization: Bearer <DASHBOARD_TOKEN>`; every JSON answer is `{success, data, timestamp}` \
or `{success: false, error: {code, message}}`.";

/// The description, made once.
pub fn document() -> &'static OpenApi {
    static DOCUMENT: OnceLock<OpenApi> = OnceLock::new();
    DOCUMENT.get_or_init(build)
}

fn build() -> OpenApi {
    let mut schemas = Schemas::new();
    let failure = named::<Failure>(&mut schemas);
    let mut paths = PathsBuilder::new();
    // The description leaves itself out.
    for operation in Operation::ALL
        .into_iter()
        .filter(|o| *o != Operation::OpenApi)
    {
        let spec = operation.spec();
        let tag = match spec.function {
            Function::Webhook => "webhook",
            _ => "metrics",
        };
        let mut builder = OperationBuilder::new()
            .tag(tag)
            .summary(Some(spec.summary))
            .operation_id(Some(snake_case(&format!("{operation:?}"))));
        for param in spec.params {
            let schema: RefOr<Schema> = match param.bounds {
                Some((min, max)) => ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
                    .minimum(Some(min))
                    .maximum(Some(max))
                    .into(),
                None => ObjectBuilder::new().schema_type(Type::String).into(),
            };
            builder = builder.parameter(
                ParameterBuilder::new()
                    .name(param.name)
                    .parameter_in(match param.location {
                        In::Query => ParameterIn::Query,
                        In::Header => ParameterIn::Header,
                        In::Path => ParameterIn::Path,
                    })
                    .description(Some(param.description))
                    .required(if param.required {
                        utoipa::openapi::Required::True
                    } else {
                        utoipa::openapi::Required::False
                    })
                    .schema(Some(schema)),
            );
        }
        if operation == Operation::Deliver {
            builder = builder.request_body(Some(
                RequestBodyBuilder::new()
                    .description(Some("Meta's webhook payload"))
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(ObjectBuilder::new().schema_type(Type::Object)))
                            .build(),
                    )
                    .required(Some(utoipa::openapi::Required::True))
                    .build(),
            ));
        }
        if spec.token {
            builder = builder.security(SecurityRequirement::new::<_, _, &str>(
                "dashboard_token",
                [],
            ));
        }
        let answer = spec.answer;
        let body = (answer.body)(&mut schemas);
        for (status, description) in [(answer.status, answer.description)]
            .iter()
            .chain(answer.also)
        {
            builder = builder.response(
                status.to_string(),
                ResponseBuilder::new().description(*description).content(
                    answer.content_type,
                    ContentBuilder::new().schema(Some(body.clone())).build(),
                ),
            );
        }
        for (status, description) in spec.failures {
            builder = builder.response(
                status.to_string(),
                ResponseBuilder::new().description(*description).content(
                    "application/json",
                    ContentBuilder::new().schema(Some(failure.clone())).build(),
                ),
            );
        }
        let method = match spec.method {
            "POST" => HttpMethod::Post,
            _ => HttpMethod::Get,
        };
        paths = paths.path(spec.path, PathItem::new(method, builder.build()));
    }
    let token = HttpBuilder::new()
        .scheme(HttpAuthScheme::Bearer)
        .description(Some("DASHBOARD_TOKEN"))
        .build();
    let components = ComponentsBuilder::new()
        .schemas_from_iter(schemas)
        .security_scheme("dashboard_token", SecurityScheme::Http(token))
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Pulse")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(DESCRIPTION))
                .license(Some(
                    utoipa::openapi::LicenseBuilder::new()
                        .name("MIT")
                        .identifier(Some("MIT"))
                        .build(),
                )),
        )
        .paths(paths)
        .components(Some(components))
        .tags(Some([
            TagBuilder::new()
                .name("webhook")
                .description(Some("What Meta calls"))
                .build(),
            TagBuilder::new()
                .name("metrics")
                .description(Some("What the dashboard and operators read"))
                .build(),
        ]))
        .build()
}

/// `RecentEvents` → `recent_events`.
fn snake_case(name: &str) -> String {
    let mut snake = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            snake.push('_');
        }
        snake.push(c.to_ascii_lowercase());
    }
    snake
}
