//! Route matching: templates, path parameters and the OAuth scopes each
//! route needs.

/// A matched REST route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    Services,
    Service(String),
    UpdateService(String),
    ServiceChangeEvents(String),
    Incidents,
    Incident(String),
    UpdateIncident(String),
    Oncalls,
    EscalationPolicies,
    EscalationPolicy(String),
    ChangeEvents,
    Teams,
    Team(String),
    User(String),
    Schedule(String),
    Abilities,
    StandardsScores(String),
    StandardsScore(String, String),
    IncidentMetricsByService,
    ServiceDependencies(String),
    AssociateDependencies,
    DisassociateDependencies,
    CreateServiceIntegration(String),
    ServiceIntegration(String, String),
    WebhookSubscriptions,
    CreateWebhookSubscription,
    WebhookSubscription(String),
    DeleteWebhookSubscription(String),
    PingWebhookSubscription(String),
    EnableWebhookSubscription(String),
    OAuthToken,
    Enqueue,
    ChangeEnqueue,
}

impl Route {
    /// Every template [`Route::matches`] can return, with its method (what
    /// `per_route` faults may name).
    pub const TEMPLATES: &'static [(&'static str, &'static str)] = &[
        ("GET", "/services"),
        ("GET", "/services/{id}"),
        ("PUT", "/services/{id}"),
        ("GET", "/services/{id}/change_events"),
        ("GET", "/incidents"),
        ("GET", "/incidents/{id}"),
        ("PUT", "/incidents/{id}"),
        ("GET", "/oncalls"),
        ("GET", "/escalation_policies"),
        ("GET", "/escalation_policies/{id}"),
        ("GET", "/change_events"),
        ("GET", "/teams"),
        ("GET", "/teams/{id}"),
        ("GET", "/users/{id}"),
        ("GET", "/schedules/{id}"),
        ("GET", "/abilities"),
        ("GET", "/standards/scores/{resource_type}"),
        ("GET", "/standards/scores/{resource_type}/{id}"),
        ("POST", "/analytics/metrics/incidents/services"),
        ("GET", "/service_dependencies/technical_services/{id}"),
        ("POST", "/service_dependencies/associate"),
        ("POST", "/service_dependencies/disassociate"),
        ("POST", "/services/{id}/integrations"),
        ("GET", "/services/{id}/integrations/{integration_id}"),
        ("GET", "/webhook_subscriptions"),
        ("POST", "/webhook_subscriptions"),
        ("GET", "/webhook_subscriptions/{id}"),
        ("DELETE", "/webhook_subscriptions/{id}"),
        ("POST", "/webhook_subscriptions/{id}/ping"),
        ("POST", "/webhook_subscriptions/{id}/enable"),
        ("POST", "/oauth/token"),
        ("POST", "/v2/enqueue"),
        ("POST", "/v2/change/enqueue"),
    ];

    /// Whether `template` is one of [`Route::TEMPLATES`].
    pub fn is_template(template: &str) -> bool {
        Self::TEMPLATES.iter().any(|(_, t)| *t == template)
    }

    /// Matches `method` and `path` to a route and its template.
    pub fn matches(method: &str, path: &str) -> Option<(Route, &'static str)> {
        let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
        let s = |i: usize| segs[i].to_owned();
        let r = match (method, segs.as_slice()) {
            ("GET", ["services"]) => (Route::Services, "/services"),
            ("GET", ["services", _]) => (Route::Service(s(1)), "/services/{id}"),
            ("PUT", ["services", _]) => (Route::UpdateService(s(1)), "/services/{id}"),
            ("GET", ["services", _, "change_events"]) => (
                Route::ServiceChangeEvents(s(1)),
                "/services/{id}/change_events",
            ),
            ("GET", ["incidents"]) => (Route::Incidents, "/incidents"),
            ("GET", ["incidents", _]) => (Route::Incident(s(1)), "/incidents/{id}"),
            ("PUT", ["incidents", _]) => (Route::UpdateIncident(s(1)), "/incidents/{id}"),
            ("GET", ["oncalls"]) => (Route::Oncalls, "/oncalls"),
            ("GET", ["escalation_policies"]) => (Route::EscalationPolicies, "/escalation_policies"),
            ("GET", ["escalation_policies", _]) => {
                (Route::EscalationPolicy(s(1)), "/escalation_policies/{id}")
            }
            ("GET", ["change_events"]) => (Route::ChangeEvents, "/change_events"),
            ("GET", ["teams"]) => (Route::Teams, "/teams"),
            ("GET", ["teams", _]) => (Route::Team(s(1)), "/teams/{id}"),
            ("GET", ["users", _]) => (Route::User(s(1)), "/users/{id}"),
            ("GET", ["schedules", _]) => (Route::Schedule(s(1)), "/schedules/{id}"),
            ("GET", ["abilities"]) => (Route::Abilities, "/abilities"),
            ("GET", ["standards", "scores", _]) => (
                Route::StandardsScores(s(2)),
                "/standards/scores/{resource_type}",
            ),
            ("GET", ["standards", "scores", _, _]) => (
                Route::StandardsScore(s(2), s(3)),
                "/standards/scores/{resource_type}/{id}",
            ),
            ("POST", ["analytics", "metrics", "incidents", "services"]) => (
                Route::IncidentMetricsByService,
                "/analytics/metrics/incidents/services",
            ),
            ("GET", ["service_dependencies", "technical_services", _]) => (
                Route::ServiceDependencies(s(2)),
                "/service_dependencies/technical_services/{id}",
            ),
            ("POST", ["service_dependencies", "associate"]) => (
                Route::AssociateDependencies,
                "/service_dependencies/associate",
            ),
            ("POST", ["service_dependencies", "disassociate"]) => (
                Route::DisassociateDependencies,
                "/service_dependencies/disassociate",
            ),
            ("POST", ["services", _, "integrations"]) => (
                Route::CreateServiceIntegration(s(1)),
                "/services/{id}/integrations",
            ),
            ("GET", ["services", _, "integrations", _]) => (
                Route::ServiceIntegration(s(1), s(3)),
                "/services/{id}/integrations/{integration_id}",
            ),
            ("GET", ["webhook_subscriptions"]) => {
                (Route::WebhookSubscriptions, "/webhook_subscriptions")
            }
            ("POST", ["webhook_subscriptions"]) => {
                (Route::CreateWebhookSubscription, "/webhook_subscriptions")
            }
            ("GET", ["webhook_subscriptions", _]) => (
                Route::WebhookSubscription(s(1)),
                "/webhook_subscriptions/{id}",
            ),
            ("DELETE", ["webhook_subscriptions", _]) => (
                Route::DeleteWebhookSubscription(s(1)),
                "/webhook_subscriptions/{id}",
            ),
            ("POST", ["webhook_subscriptions", _, "ping"]) => (
                Route::PingWebhookSubscription(s(1)),
                "/webhook_subscriptions/{id}/ping",
            ),
            ("POST", ["webhook_subscriptions", _, "enable"]) => (
                Route::EnableWebhookSubscription(s(1)),
                "/webhook_subscriptions/{id}/enable",
            ),
            ("POST", ["oauth", "token"]) => (Route::OAuthToken, "/oauth/token"),
            ("POST", ["v2", "enqueue"]) => (Route::Enqueue, "/v2/enqueue"),
            ("POST", ["v2", "change", "enqueue"]) => (Route::ChangeEnqueue, "/v2/change/enqueue"),
            _ => return None,
        };
        Some(r)
    }

    /// Scopes that grant access (any one of them); `None` = no REST auth.
    pub fn scopes(&self) -> Option<&'static [&'static str]> {
        Some(match self {
            Route::Services
            | Route::Service(_)
            | Route::ServiceChangeEvents(_)
            | Route::ServiceDependencies(_)
            | Route::ServiceIntegration(..) => &["services.read"],
            Route::AssociateDependencies
            | Route::DisassociateDependencies
            | Route::CreateServiceIntegration(_)
            | Route::UpdateService(_) => &["services.write"],
            Route::WebhookSubscriptions | Route::WebhookSubscription(_) => {
                &["webhook_subscriptions.read"]
            }
            Route::CreateWebhookSubscription
            | Route::DeleteWebhookSubscription(_)
            | Route::PingWebhookSubscription(_)
            | Route::EnableWebhookSubscription(_) => &["webhook_subscriptions.write"],
            Route::Incidents | Route::Incident(_) => &["incidents.read"],
            Route::UpdateIncident(_) => &["incidents.write"],
            Route::Oncalls => &["oncalls.read"],
            Route::EscalationPolicies | Route::EscalationPolicy(_) => &["escalation_policies.read"],
            Route::ChangeEvents => &["change_events.read"],
            Route::Teams | Route::Team(_) => &["teams.read"],
            Route::User(_) => &["users.read"],
            Route::Schedule(_) => &["schedules.read"],
            Route::Abilities => &["abilities.read"],
            Route::StandardsScores(_) | Route::StandardsScore(..) => &["standards.read"],
            // The OpenAPI says analytics.write; PagerDuty's Backstage plugin asks for analytics.read.
            Route::IncidentMetricsByService => &["analytics.read", "analytics.write"],
            Route::OAuthToken | Route::Enqueue | Route::ChangeEnqueue => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_exactly_what_matches_returns() {
        for (method, template) in Route::TEMPLATES {
            let path = template
                .replace("{id}", "PABC123")
                .replace("{integration_id}", "PDEF456")
                .replace("{resource_type}", "technical_services");
            let (_, got) = Route::matches(method, &path)
                .unwrap_or_else(|| panic!("{method} {path} does not match"));
            assert_eq!(got, *template);
        }
        // A path of every shape `matches` knows, and its template is listed.
        for (method, path) in [
            ("GET", "/services/P1/change_events"),
            ("GET", "/standards/scores/technical_services/P1"),
            ("POST", "/v2/change/enqueue"),
        ] {
            let (_, template) = Route::matches(method, path).unwrap();
            assert!(Route::is_template(template), "{template}");
        }
        assert!(!Route::is_template("/service/{id}"));
        assert!(!Route::is_template("/services/PABC123"));
    }
}
