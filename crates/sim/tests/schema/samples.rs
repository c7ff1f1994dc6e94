//! The requests the schema tests send: at least one success of every
//! route, each `include[]` the route takes, and the error answers the spec
//! documents (400, 401, 403, 404, 429, 5xx).

use serde_json::{Value, json};
use sim::{FaultSpec, Faults, SimHandle};

/// The URI the REST description is registered under.
pub const REST_URI: &str = "urn:pagerduty:rest-api-v2";
/// The REST API's one error shape (every error response points at it).
pub const REST_ERROR: &str = "/components/responses/Conflict/content/application~1json/schema";
/// The URI the Events API description is registered under.
pub const EVENTS_URI: &str = "urn:pagerduty:events-api-v2";
/// The Events API's error shape (documented for 5XX; 400 and 429 have no
/// schema, and the real answers have this shape).
pub const EVENTS_ERROR: &str = "/components/responses/Error/content/application~1json/schema";

/// Which credentials a sample sends.
#[derive(Clone, Copy, Debug)]
pub enum Auth {
    /// A token with every scope.
    Full,
    /// A token with `abilities.read` only.
    Narrow,
    /// No `Authorization` header.
    None,
}

/// One request and the status it must get.
#[derive(Clone, Debug)]
pub struct Sample {
    pub method: &'static str,
    /// The simulator's (and the spec's) route template.
    pub template: &'static str,
    pub path: String,
    pub body: Option<String>,
    pub auth: Auth,
    pub status: u16,
    /// Faults in force for this request only.
    pub faults: Option<Faults>,
    /// The `From` header (the user a REST update is made by).
    pub from: Option<String>,
}

impl Sample {
    pub fn get(template: &'static str, path: impl Into<String>) -> Self {
        Self {
            method: "GET",
            template,
            path: path.into(),
            body: None,
            auth: Auth::Full,
            status: 200,
            faults: None,
            from: None,
        }
    }

    pub fn post(template: &'static str, path: impl Into<String>, body: &Value) -> Self {
        Self {
            method: "POST",
            body: Some(body.to_string()),
            ..Self::get(template, path)
        }
    }

    pub fn put(template: &'static str, path: impl Into<String>, body: &Value) -> Self {
        Self {
            method: "PUT",
            ..Self::post(template, path, body)
        }
    }

    pub fn from(mut self, email: &str) -> Self {
        self.from = Some(email.to_owned());
        self
    }

    pub fn raw_body(mut self, body: &str) -> Self {
        self.body = Some(body.to_owned());
        self
    }

    pub fn method(mut self, method: &'static str) -> Self {
        self.method = method;
        self
    }

    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// The next request on this route fails with `status` (an injected fault).
    pub fn injected(mut self, status: u16) -> Self {
        self.faults = Some(Faults {
            per_route: vec![(
                self.template.to_owned(),
                FaultSpec {
                    fail_next: 1,
                    fail_status: status,
                    ..FaultSpec::default()
                },
            )],
            ..Faults::default()
        });
        self.status(status)
    }
}

/// Two webhook subscriptions made before the samples run: one to ping and
/// read, one to delete.
pub struct Subscriptions {
    pub kept: String,
    pub deleted: String,
}

/// Samples of every REST route.
pub fn rest(sim: &SimHandle, subs: &Subscriptions) -> Vec<Sample> {
    let a = sim.account();
    let svc = &a.services[0];
    let other = &a.services[3];
    let integrated = a
        .services
        .iter()
        .find(|s| s.integrations.len() >= 3)
        .unwrap_or(svc);
    let ep = &svc.escalation_policy_id;
    let team = &a.teams[0].id;
    let user = &a.users[0].id;
    let schedule = a
        .schedules
        .iter()
        .find(|s| !s.user_ids.is_empty())
        .map(|s| s.id.clone())
        .unwrap();
    let acknowledged = a.incidents.iter().find(|i| i.status == "acknowledged");
    let resolved = a.incidents.iter().find(|i| i.status == "resolved");
    let (acknowledged, resolved) = (&acknowledged.unwrap().id, &resolved.unwrap().id);
    let s = |t: &'static str, p: String| Sample::get(t, p);
    let svc_id = &svc.id;
    let mut out = vec![
        // Services.
        s("/services", "/services".into()),
        s(
            "/services",
            "/services?limit=100&total=true&include[]=escalation_policies&include[]=teams&include[]=integrations".into(),
        ),
        s("/services", "/services?sort_by=size".into()).status(400),
        s("/services", "/services".into()).auth(Auth::None).status(401),
        s("/services", "/services".into()).auth(Auth::Narrow).status(403),
        s("/services/{id}", format!("/services/{svc_id}")),
        s(
            "/services/{id}",
            format!(
                "/services/{}?include[]=escalation_policies&include[]=teams&include[]=integrations",
                integrated.id
            ),
        ),
        s("/services/{id}", "/services/PNOPE00".into()).status(404),
        s("/services/{id}", format!("/services/{svc_id}?include[]=x")).status(400),
        s(
            "/services/{id}/change_events",
            format!("/services/{}/change_events?limit=5", other.id),
        ),
        s(
            "/services/{id}/change_events",
            format!("/services/{svc_id}/change_events?since=2026-05-01T00:00:00%2B02:00"),
        )
        .status(400),
        s("/services/{id}/change_events", "/services/PNOPE00/change_events".into()).status(404),
        // Incidents.
        s("/incidents", "/incidents?date_range=all&limit=100&total=true".into()),
        s(
            "/incidents",
            "/incidents?date_range=all&limit=20&include[]=services&include[]=escalation_policies&include[]=teams&include[]=users".into(),
        ),
        s(
            "/incidents",
            "/incidents?date_range=all&limit=20&include[]=assignees&include[]=acknowledgers".into(),
        ),
        s("/incidents", "/incidents?statuses[]=open".into()).status(400),
        s("/incidents", "/incidents".into()).injected(429),
        s("/incidents/{id}", format!("/incidents/{acknowledged}")),
        s("/incidents/{id}", format!("/incidents/{resolved}?include[]=acknowledgers")),
        s("/incidents/{id}", "/incidents/PNOPE00".into()).status(404),
        // On-calls.
        s("/oncalls", "/oncalls?limit=100".into()),
        s(
            "/oncalls",
            "/oncalls?limit=50&include[]=users&include[]=schedules&include[]=escalation_policies".into(),
        ),
        s("/oncalls", format!("/oncalls?earliest=true&escalation_policy_ids[]={ep}")),
        s(
            "/oncalls",
            "/oncalls?since=2026-06-01T00:00:00Z&until=2026-12-01T00:00:00Z".into(),
        )
        .status(400),
        // Escalation policies.
        s("/escalation_policies", "/escalation_policies?limit=100".into()),
        s(
            "/escalation_policies",
            "/escalation_policies?include[]=services&include[]=teams&include[]=targets".into(),
        ),
        s("/escalation_policies", "/escalation_policies?sort_by=size".into()).status(400),
        s("/escalation_policies/{id}", format!("/escalation_policies/{ep}")),
        s(
            "/escalation_policies/{id}",
            format!("/escalation_policies/{ep}?include[]=services&include[]=teams&include[]=targets"),
        ),
        s("/escalation_policies/{id}", "/escalation_policies/PNOPE00".into()).status(404),
        // Change events.
        s("/change_events", "/change_events?limit=100&total=true".into()),
        s("/change_events", "/change_events?until=yesterday".into()).status(400),
        // Teams, users, schedules, abilities.
        s("/teams", "/teams?limit=100".into()),
        s("/teams/{id}", format!("/teams/{team}")),
        s("/teams/{id}", "/teams/PNOPE00".into()).status(404),
        s("/users/{id}", format!("/users/{user}")),
        s("/users/{id}", "/users/PNOPE00".into()).status(404),
        s("/schedules/{id}", format!("/schedules/{schedule}")),
        s("/schedules/{id}", "/schedules/PNOPE00".into()).status(404),
        s("/abilities", "/abilities".into()),
        s("/abilities", "/abilities".into()).auth(Auth::Narrow),
        // Standards.
        s(
            "/standards/scores/{resource_type}",
            format!(
                "/standards/scores/technical_services?ids[]={svc_id}&ids[]={}",
                other.id
            ),
        ),
        s(
            "/standards/scores/{resource_type}/{id}",
            format!("/standards/scores/technical_services/{svc_id}"),
        ),
        s(
            "/standards/scores/{resource_type}/{id}",
            "/standards/scores/technical_services/PNOPE00".into(),
        )
        .status(404),
    ];
    out.extend(dependencies(&svc_id.clone(), &other.id));
    out.extend(integrations(sim));
    out.extend(webhook_subscriptions(sim, subs));
    // Analytics: whole period, per day, filtered, and a bad filter.
    let metrics = "/analytics/metrics/incidents/services";
    let window = json!({
        "created_at_start": "2026-03-01T00:00:00Z",
        "created_at_end": "2026-06-01T00:00:00Z",
    });
    out.extend([
        Sample::post(metrics, metrics, &json!({"filters": window})),
        Sample::post(
            metrics,
            metrics,
            &json!({"filters": window, "aggregate_unit": "week", "time_zone": "Etc/UTC"}),
        ),
        Sample::post(
            metrics,
            metrics,
            &json!({"filters": {
                "created_at_start": "2026-05-01T00:00:00Z",
                "created_at_end": "2026-06-01T00:00:00Z",
                "urgency": "high",
                "service_ids": [svc_id, other.id],
            }, "aggregate_unit": "day"}),
        ),
        Sample::post(
            metrics,
            metrics,
            &json!({"filters": {"created_at_start": "last week"}}),
        )
        .status(400),
    ]);
    // Last: the updates change the account the samples above read.
    out.extend(updates(sim));
    out
}

/// Samples of both Events API routes.
pub fn events(sim: &SimHandle) -> Vec<Sample> {
    let a = sim.account();
    let key = a
        .services
        .iter()
        .find(|s| s.status == "active")
        .and_then(|s| s.integrations[0].integration_key.clone())
        .unwrap();
    let trigger = json!({
        "routing_key": key, "event_action": "trigger", "dedup_key": "schema-1",
        "payload": {"summary": "Disk full", "source": "db-1", "severity": "critical"},
    });
    let ack = json!({"routing_key": key, "event_action": "acknowledge", "dedup_key": "schema-1"});
    let change = json!({
        "routing_key": key,
        "payload": {"summary": "Deployed v2", "source": "ci", "timestamp": "2026-06-01T11:00:00Z"},
        "links": [{"href": "https://ci.example.com/1", "text": "build 1"}],
    });
    let (enqueue, change_enqueue) = ("/v2/enqueue", "/v2/change/enqueue");
    let none = |s: Sample| s.auth(Auth::None);
    vec![
        none(Sample::post(enqueue, enqueue, &trigger)).status(202),
        none(Sample::post(enqueue, enqueue, &ack)).status(202),
        none(Sample::post(
            enqueue,
            enqueue,
            &json!({"event_action": "trigger"}),
        ))
        .status(400),
        none(Sample::post(enqueue, enqueue, &trigger))
            .raw_body("{not json")
            .status(400),
        none(Sample::post(enqueue, enqueue, &trigger)).injected(429),
        none(Sample::post(enqueue, enqueue, &trigger)).injected(500),
        none(Sample::post(change_enqueue, change_enqueue, &change)).status(202),
        none(Sample::post(
            change_enqueue,
            change_enqueue,
            &json!({"payload": {}}),
        ))
        .status(400),
        none(Sample::post(change_enqueue, change_enqueue, &change)).injected(503),
    ]
}

/// Associate, list, disassociate, and their errors.
fn dependencies(dependent: &str, supporting: &str) -> Vec<Sample> {
    let (associate, disassociate) = (
        "/service_dependencies/associate",
        "/service_dependencies/disassociate",
    );
    let list = "/service_dependencies/technical_services/{id}";
    let pair = |supporting: &str, dependent: &str| {
        json!({"relationships": [{
            "supporting_service": {"id": supporting, "type": "service"},
            "dependent_service": {"id": dependent, "type": "service"},
        }]})
    };
    vec![
        Sample::post(associate, associate, &pair(supporting, dependent)),
        Sample::get(
            list,
            format!("/service_dependencies/technical_services/{dependent}"),
        ),
        Sample::get(
            list,
            format!("/service_dependencies/technical_services/{supporting}"),
        ),
        Sample::get(list, "/service_dependencies/technical_services/PNOPE00").status(404),
        Sample::post(associate, associate, &pair(dependent, dependent)).status(400),
        Sample::post(associate, associate, &pair("PNOPE00", dependent)).status(404),
        Sample::post(associate, associate, &json!({"relationships": "all"})).status(400),
        Sample::post(associate, associate, &pair(supporting, dependent))
            .auth(Auth::Narrow)
            .status(403),
        Sample::post(disassociate, disassociate, &pair(supporting, dependent)),
        Sample::post(disassociate, disassociate, &pair(supporting, dependent)).status(404),
        Sample::post(disassociate, disassociate, &json!({})).status(400),
    ]
}

/// Create (Backstage's body: name, service, vendor) and read, with includes.
fn integrations(sim: &SimHandle) -> Vec<Sample> {
    let a = sim.account();
    let (svc, backstage) = a
        .services
        .iter()
        .find_map(|s| {
            s.integrations
                .iter()
                .find(|i| i.vendor.is_some())
                .map(|i| (s.id.clone(), i.id.clone()))
        })
        .unwrap();
    let create = "/services/{id}/integrations";
    let one = "/services/{id}/integrations/{integration_id}";
    let path = format!("/services/{svc}/integrations");
    vec![
        Sample::post(
            create,
            path.clone(),
            &json!({"integration": {
                "name": "Backstage",
                "service": {"id": svc, "type": "service_reference"},
                "vendor": {"id": "PRO19CT", "type": "vendor_reference"},
            }}),
        )
        .status(201),
        Sample::post(
            create,
            path.clone(),
            &json!({"integration": {"type": "generic_email_inbound_integration", "name": "Mail", "integration_email": "schema@sim.pagerduty.com"}}),
        )
        .status(201),
        Sample::post(create, path.clone(), &json!({"integration": {"name": "no type"}})).status(400),
        Sample::post(create, path, &json!({})).status(400),
        Sample::get(one, format!("/services/{svc}/integrations/{backstage}")),
        Sample::get(
            one,
            format!("/services/{svc}/integrations/{backstage}?include[]=services&include[]=vendors"),
        ),
        Sample::get(one, format!("/services/{svc}/integrations/PNOPE00")).status(404),
    ]
}

/// Create, list, read, ping, enable, delete, and their errors.
fn webhook_subscriptions(sim: &SimHandle, subs: &Subscriptions) -> Vec<Sample> {
    let list = "/webhook_subscriptions";
    let one = "/webhook_subscriptions/{id}";
    let svc = sim.account().services[0].id.clone();
    let body = json!({"webhook_subscription": {
        "type": "webhook_subscription",
        "delivery_method": {
            "type": "http_delivery_method",
            "url": format!("{}/__sim/no-receiver", sim.base_url()),
            "custom_headers": [{"name": "X-Team", "value": "platform"}],
        },
        "description": "schema test",
        "events": ["incident.triggered", "incident.resolved"],
        "filter": {"id": svc, "type": "service_reference"},
    }});
    let (kept, deleted) = (&subs.kept, &subs.deleted);
    vec![
        Sample::post(list, list, &body),
        Sample::post(
            list,
            list,
            &json!({"webhook_subscription": {"type": "webhook_subscription"}}),
        )
        .status(400),
        Sample::get(list, list),
        Sample::get(
            list,
            format!("/webhook_subscriptions?filter_type=service&filter_id={svc}&total=true"),
        ),
        Sample::get(list, "/webhook_subscriptions?filter_type=planet").status(400),
        Sample::get(list, list).auth(Auth::Narrow).status(403),
        Sample::get(one, format!("/webhook_subscriptions/{kept}")),
        Sample::get(one, "/webhook_subscriptions/PNOPE00").status(404),
        Sample::post(
            "/webhook_subscriptions/{id}/ping",
            format!("/webhook_subscriptions/{kept}/ping"),
            &json!({}),
        )
        .status(202),
        Sample::post(
            "/webhook_subscriptions/{id}/ping",
            "/webhook_subscriptions/PNOPE00/ping",
            &json!({}),
        )
        .status(404),
        Sample::post(
            "/webhook_subscriptions/{id}/enable",
            format!("/webhook_subscriptions/{kept}/enable"),
            &json!({}),
        ),
        Sample::post(
            "/webhook_subscriptions/{id}/enable",
            "/webhook_subscriptions/PNOPE00/enable",
            &json!({}),
        )
        .status(404),
        Sample::get(one, format!("/webhook_subscriptions/{deleted}"))
            .method("DELETE")
            .status(204),
        Sample::get(one, format!("/webhook_subscriptions/{deleted}"))
            .method("DELETE")
            .status(404),
    ]
}

/// `PUT /services/{id}` and `PUT /incidents/{id}`: a change, a refused one,
/// an unknown id.
fn updates(sim: &SimHandle) -> Vec<Sample> {
    let a = sim.account();
    let svc = &a.services[2].id;
    let email = a.users[0].email.as_str();
    let open = a
        .incidents
        .iter()
        .find(|i| i.is_open())
        .map(|i| i.id.clone())
        .unwrap();
    let (service, incident) = ("/services/{id}", "/incidents/{id}");
    let rename = json!({"service": {"type": "service", "name": "Renamed by the schema test",
        "description": "changed", "status": "active"}});
    let resolve = json!({"incident": {"type": "incident", "status": "resolved"}});
    vec![
        Sample::put(service, format!("/services/{svc}"), &rename),
        Sample::put(
            service,
            format!("/services/{svc}"),
            &json!({"service": {"name": ""}}),
        )
        .status(400),
        Sample::put(service, "/services/PNOPE00", &rename).status(404),
        Sample::put(service, format!("/services/{svc}"), &rename)
            .auth(Auth::Narrow)
            .status(403),
        Sample::put(incident, format!("/incidents/{open}"), &resolve).from(email),
        Sample::put(incident, format!("/incidents/{open}"), &resolve).status(400),
        Sample::put(incident, "/incidents/PNOPE00", &resolve)
            .from(email)
            .status(404),
    ]
}
