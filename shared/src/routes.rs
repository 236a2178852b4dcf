//! The HTTP API's routes, in one place:
//! - [`ROUTES`], the routes as API Gateway declares them: `template.yaml` declares
//!   the same ones (`infra/deploy/check_template.py` reads this file to compare),
//!   and the local gateway dispatches by them;
//! - [`Operation`], each method and path they lead to, with what it answers:
//!   the handlers match on it, and the OpenAPI description
//!   ([`crate::handlers::openapi`]) is generated from it.

use utoipa::openapi::{RefOr, Schema};

use crate::alerts::Alerts;
use crate::handlers::openapi::{success, Schemas};
use crate::ingest::Summary;
use crate::metrics::{
    ContactDetail, Contacts, Conversations, Failures, Funnel, HealthAnswer, Realtime, RecentEvents,
    WebhookMetrics,
};

/// The Lambda function a route invokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Webhook,
    Metrics,
    Dashboard,
}

/// A route as API Gateway declares it: a method and a path, where a last
/// segment `{proxy+}` stands for one or more segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub function: Function,
}

const fn route(method: &'static str, path: &'static str, function: Function) -> Route {
    Route {
        method,
        path,
        function,
    }
}

/// Every route of the HTTP API.
pub const ROUTES: [Route; 8] = [
    route("GET", "/webhook", Function::Webhook),
    route("POST", "/webhook", Function::Webhook),
    route("GET", "/health", Function::Metrics),
    route("GET", "/api/openapi.json", Function::Metrics),
    route("GET", "/api/webhook/{proxy+}", Function::Metrics),
    route("GET", "/", Function::Dashboard),
    route("GET", "/config.json", Function::Dashboard),
    route("GET", "/assets/{proxy+}", Function::Dashboard),
];

impl Route {
    /// API Gateway's route key, e.g. `GET /api/webhook/{proxy+}`.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// Whether a request for `method` and `path` takes this route.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        self.method == method
            && match self.path.strip_suffix("{proxy+}") {
                Some(prefix) => path.len() > prefix.len() && path.starts_with(prefix),
                None => path == self.path,
            }
    }
}

/// The route a request takes, if any.
pub fn find(method: &str, path: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.matches(method, path))
}

/// An operation of the HTTP API: one method on one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Verify,
    Deliver,
    Health,
    OpenApi,
    Metrics,
    Conversations,
    Realtime,
    RecentEvents,
    Funnel,
    Failures,
    Contacts,
    Contact,
    Alerts,
}

/// Where a parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum In {
    Query,
    Header,
    /// A `{name}` segment of the path.
    Path,
}

/// A parameter of an operation.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub location: In,
    pub description: &'static str,
    /// A whole number within these bounds; else text.
    pub bounds: Option<(u32, u32)>,
    pub required: bool,
}

const fn query(name: &'static str, description: &'static str) -> Param {
    Param {
        name,
        location: In::Query,
        description,
        bounds: None,
        required: false,
    }
}

const fn required(name: &'static str, description: &'static str) -> Param {
    Param {
        required: true,
        ..query(name, description)
    }
}

const fn in_path(name: &'static str, description: &'static str) -> Param {
    Param {
        location: In::Path,
        required: true,
        ..query(name, description)
    }
}

const fn bounded(name: &'static str, description: &'static str, min: u32, max: u32) -> Param {
    Param {
        bounds: Some((min, max)),
        ..query(name, description)
    }
}

/// What an operation is: where it is, who may call it, and what it answers.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub method: &'static str,
    pub path: &'static str,
    pub function: Function,
    /// Whether it needs `Authorization: Bearer <DASHBOARD_TOKEN>`.
    pub token: bool,
    /// The OpenAPI summary: what it is for.
    pub summary: &'static str,
    pub params: &'static [Param],
    /// Its success answer: a status, what it means and the body's schema.
    pub answer: Answer,
    /// Its error answers (`Failure` bodies), by status.
    pub failures: &'static [(u16, &'static str)],
}

/// A success answer's status, meaning and body (its schema, registered in
/// `Schemas` as it is made).
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    pub status: u16,
    pub description: &'static str,
    pub content_type: &'static str,
    pub body: fn(&mut Schemas) -> RefOr<Schema>,
    /// Other statuses that answer with the same body, and what each means.
    pub also: &'static [(u16, &'static str)],
}

const fn json(description: &'static str, body: fn(&mut Schemas) -> RefOr<Schema>) -> Answer {
    Answer {
        status: 200,
        description,
        content_type: "application/json",
        body,
        also: &[],
    }
}

/// How a data route fails: with parameters, and without.
const TOKEN_FAILURES: [(u16, &str); 3] = [
    (400, "A parameter out of bounds"),
    (401, "No or wrong token"),
    (503, "The store failed"),
];
const NO_PARAMETER_FAILURES: [(u16, &str); 2] =
    [(401, "No or wrong token"), (503, "The store failed")];

impl Operation {
    pub const ALL: [Operation; 13] = [
        Self::Verify,
        Self::Deliver,
        Self::Health,
        Self::OpenApi,
        Self::Metrics,
        Self::Conversations,
        Self::Realtime,
        Self::RecentEvents,
        Self::Funnel,
        Self::Failures,
        Self::Contacts,
        Self::Contact,
        Self::Alerts,
    ];

    pub fn spec(self) -> Spec {
        let metrics = |path, summary, params: &'static [Param], answer| Spec {
            method: "GET",
            path,
            function: Function::Metrics,
            token: true,
            summary,
            params,
            answer,
            failures: if params.is_empty() {
                &NO_PARAMETER_FAILURES
            } else {
                &TOKEN_FAILURES
            },
        };
        match self {
            Self::Verify => Spec {
                method: "GET",
                path: "/webhook",
                function: Function::Webhook,
                token: false,
                summary: "Meta's subscription check: echoes `hub.challenge` for the verify token.",
                params: const {
                    &[
                    required("hub.mode", "`subscribe`"),
                    required("hub.verify_token", "WHATSAPP_VERIFY_TOKEN"),
                    required("hub.challenge", "Echoed back as text/plain"),
                ]
                },
                answer: Answer {
                    status: 200,
                    description: "The challenge",
                    content_type: "text/plain",
                    body: |_| <String as utoipa::PartialSchema>::schema(),
                    also: &[],
                },
                failures: &[(403, "Wrong token or mode")],
            },
            Self::Deliver => Spec {
                method: "POST",
                path: "/webhook",
                function: Function::Webhook,
                token: false,
                summary: "A signed delivery (`X-Hub-Signature-256`): recorded whole, exactly once, before the answer.",
                params: &[Param {
                    name: "X-Hub-Signature-256",
                    location: In::Header,
                    description: "`sha256=` HMAC of the body with WHATSAPP_APP_SECRET",
                    bounds: None,
                    required: true,
                }],
                answer: json(
                    "Stored: `data` is `{received, stored, duplicates}`",
                    success::<Summary>,
                ),
                failures: &[
                    (400, "Not a webhook payload"),
                    (401, "Missing or wrong signature"),
                    (413, "Over 6 MB"),
                    (503, "The store failed; Meta retries"),
                ],
            },
            Self::Health => Spec {
                method: "GET",
                path: "/health",
                function: Function::Metrics,
                token: false,
                summary: "Liveness and the store's round trip; also at `/api/webhook/health`.",
                params: &[],
                answer: Answer {
                    also: &[(503, "The store does not answer")],
                    ..json("Healthy", crate::handlers::openapi::named::<HealthAnswer>)
                },
                failures: &[],
            },
            Self::OpenApi => Spec {
                method: "GET",
                path: "/api/openapi.json",
                function: Function::Metrics,
                token: false,
                summary: "This description of the API (it holds no data).",
                params: &[],
                answer: json("The OpenAPI 3.1 document", |_| {
                    <serde_json::Value as utoipa::PartialSchema>::schema()
                }),
                failures: &[],
            },
            Self::Metrics => metrics(
                "/api/webhook/metrics",
                "Button clicks, messages, statuses, delivery rate and response times over the last `days` local calendar days (PULSE_TIMEZONE).",
                const { &[bounded("days", "1 to 90, default 7", 1, 90)] },
                json("The figures", success::<WebhookMetrics>),
            ),
            Self::Conversations => metrics(
                "/api/webhook/conversations",
                "Contacts by latest activity, with who is waiting for a reply.",
                const {
                    &[
                        bounded("limit", "1 to 200, default 20", 1, 200),
                        bounded("active_minutes", "1 to 10080, default 30", 1, 10_080),
                    ]
                },
                json("The conversations", success::<Conversations>),
            ),
            Self::Realtime => metrics(
                "/api/webhook/stats/realtime",
                "Events in the last minute, 5 minutes and hour, and per minute.",
                &[],
                json("The counts", success::<Realtime>),
            ),
            Self::RecentEvents => metrics(
                "/api/webhook/events/recent",
                "Events newest first (by WhatsApp time), numbers masked, page by page.",
                const {
                    &[
                    bounded("limit", "1 to 200, default 50", 1, 200),
                    query("type", "One event type: button_click, text_message, media_message, list_selection, other_message, status_update, other_update"),
                    query("q", "Text to find (case-insensitive), at most 200 characters"),
                    query("before", "The `next` of the previous page"),
                    query("contact", "A contact's `key`: only its events, its timeline"),
                ]
                },
                json("A page", success::<RecentEvents>),
            ),
            Self::Funnel => metrics(
                "/api/webhook/funnel",
                "The outbound messages of the last `days` local calendar days (by their earliest status), stage by stage: sent, delivered, read, clicked, failed; by category and day, with the clicks on them, the times to read and click, and the answers to the clicks.",
                const { &[bounded("days", "1 to 90, default 7", 1, 90)] },
                json("The funnel", success::<Funnel>),
            ),
            Self::Failures => metrics(
                "/api/webhook/failures",
                "The outbound messages of the last `days` local calendar days that failed, by Meta's error code, most first.",
                const { &[bounded("days", "1 to 90, default 7", 1, 90)] },
                json("The failures", success::<Failures>),
            ),
            Self::Contacts => metrics(
                "/api/webhook/contacts",
                "The contacts with any event in the last `days` local calendar days, latest activity first, each with its window figures and segment; filtered by segment or failure code, page by page.",
                const {
                    &[
                        bounded("days", "1 to 90, default 7", 1, 90),
                        query("segment", "all (the default), engaged, reading, unread, unreached or none"),
                        query("code", "Meta's error code, or none: the contacts with a message of the window that failed with it"),
                        bounded("limit", "1 to 200, default 50", 1, 200),
                        query("cursor", "The `next` of the previous page"),
                    ]
                },
                json("A page of contacts", success::<Contacts>),
            ),
            Self::Contact => Spec {
                failures: &[
                    (400, "A parameter out of bounds"),
                    (401, "No or wrong token"),
                    (404, "No contact has this key"),
                    (503, "The store failed"),
                ],
                ..metrics(
                    "/api/webhook/contacts/{key}",
                    "One contact: its figures over the last `days` local calendar days, and since Pulse first saw it. Its timeline is `/api/webhook/events/recent?contact={key}`.",
                    const {
                        &[
                            in_path("key", "The contact's `key`"),
                            bounded("days", "1 to 90, default 7", 1, 90),
                        ]
                    },
                    json("The contact", success::<ContactDetail>),
                )
            },
            Self::Alerts => metrics(
                "/api/webhook/alerts",
                "The active alerts (silence, refused, failures, store), each with what is wrong and what to check first, and the latest 50 fires and resolves, newest first, with how each notification went.",
                &[],
                json("The alerts", success::<Alerts>),
            ),
        }
    }

    /// The operation a request for `method` and `path` is (a trailing `/` aside).
    pub fn find(method: &str, path: &str) -> Option<Self> {
        let path = match path.trim_end_matches('/') {
            "/api/webhook/health" => "/health",
            trimmed => trimmed,
        };
        Self::ALL.into_iter().find(|operation| {
            let spec = operation.spec();
            spec.method == method && spec.path_params(path).is_some()
        })
    }
}

impl Spec {
    /// The values of the path's `{name}` segments when `path` is this
    /// operation's path, in order; `None` when it is not.
    pub fn path_params<'a>(&self, path: &'a str) -> Option<Vec<&'a str>> {
        let mut values = Vec::new();
        let mut given = path.split('/');
        for segment in self.path.split('/') {
            let value = given.next()?;
            if segment.starts_with('{') && segment.ends_with('}') {
                (!value.is_empty()).then_some(())?;
                values.push(value);
            } else if segment != value {
                return None;
            }
        }
        given.next().is_none().then_some(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_take_their_route_and_greedy_paths_need_a_segment() {
        let key = |m, p| find(m, p).map(|r| r.key());
        assert_eq!(key("POST", "/webhook").as_deref(), Some("POST /webhook"));
        assert_eq!(
            key("GET", "/api/webhook/metrics").as_deref(),
            Some("GET /api/webhook/{proxy+}")
        );
        assert_eq!(
            key("GET", "/api/openapi.json").as_deref(),
            Some("GET /api/openapi.json")
        );
        assert_eq!(
            key("GET", "/assets/a/b.js").as_deref(),
            Some("GET /assets/{proxy+}")
        );
        for (method, path) in [
            ("GET", "/api/webhook/"),
            ("DELETE", "/webhook"),
            ("GET", "/webhooks"),
            ("POST", "/health"),
            ("GET", "/assets"),
        ] {
            assert_eq!(find(method, path), None, "{method} {path}");
        }
    }

    #[test]
    fn every_operation_is_routed_to_its_function() {
        for operation in Operation::ALL {
            let spec = operation.spec();
            let route = find(spec.method, spec.path).unwrap_or_else(|| panic!("{operation:?}"));
            assert_eq!(route.function, spec.function, "{operation:?}");
            assert_eq!(Operation::find(spec.method, spec.path), Some(operation));
        }
        assert_eq!(
            Operation::find("GET", "/api/webhook/health/"),
            Some(Operation::Health)
        );
        assert_eq!(Operation::find("POST", "/api/webhook/metrics"), None);
        assert_eq!(
            Operation::find("GET", "/api/webhook/contacts/abc_-1"),
            Some(Operation::Contact)
        );
        assert_eq!(
            Operation::Contact
                .spec()
                .path_params("/api/webhook/contacts/abc_-1"),
            Some(vec!["abc_-1"])
        );
        for path in ["/api/webhook/contacts/a/b", "/api/webhook/contacts//"] {
            assert_ne!(
                Operation::find("GET", path),
                Some(Operation::Contact),
                "{path}"
            );
        }
        assert_eq!(Operation::find("GET", "/api/webhook/nothing"), None);
    }
}
