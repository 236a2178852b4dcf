//! The HTTP API's routes, in one table. `template.yaml` declares the same ones
//! (`infra/deploy/check_template.py` reads this file to compare), the local
//! gateway dispatches by it, and the REST API's OpenAPI description
//! ([`crate::handlers::metrics_api::ApiDoc`]) documents what is behind them.

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
}
