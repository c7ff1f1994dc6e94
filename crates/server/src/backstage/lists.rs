//! The list routes: escalation policies, teams and accounts.

use actix_web::{HttpRequest, HttpResponse, get, web};

use super::envelopes::{
    AccountEntry, AccountsEnvelope, PolicyOption, json_body, to_bytes, with_account,
};
use super::error::{BackstageError, ErrorsBody, Op, ReadErrors};
use super::params::{Params, Result, each_account};
use super::services::list_key;
use crate::state::AppState;

/// `GET /escalation_policies`: the policies of `?account=` (or of every
/// account), for pickers.
///
/// A bare array of `{label, value}` sorted by account, then name (case
/// insensitive). With several accounts configured every label reads
/// `(account) name`, filtered or not.
#[utoipa::path(
    tag = "backstage",
    params(("account" = Option<String>, Query, description = "Account id (every account when absent or empty)")),
    responses(
        (status = 200, description = "The policies", body = Vec<PolicyOption>),
        (status = 400, description = "Unknown account", body = ErrorsBody),
        ReadErrors,
    ),
    security(("bearer" = []))
)]
#[get("/escalation_policies")]
pub async fn list_escalation_policies(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let params = Params::parse(&req)?;
    let prefixed = state.accounts.len() > 1;
    let op = Op::EscalationPolicies;
    let lists = each_account(&state, &params, op, |account| async {
        account
            .cards
            .escalation_policies_versioned()
            .await
            .map_err(|e| BackstageError::from_pagerduty(op, &e))
    })
    .await?;
    let (accounts, versions) = list_key(&lists);
    let bytes = state.rendered.bodies.get_or_render(
        "escalation_policies",
        "",
        &accounts,
        &versions,
        || {
            let mut options = Vec::new();
            for (account, (list, _)) in &lists {
                let mut policies: Vec<_> = list.iter().collect();
                policies.sort_by_key(|p| policy_name(p).to_lowercase());
                for policy in policies {
                    let name = policy_name(policy);
                    options.push(PolicyOption {
                        label: if prefixed {
                            format!("({account}) {name}")
                        } else {
                            name.to_owned()
                        },
                        value: policy.id.clone(),
                    });
                }
            }
            to_bytes(&options)
        },
    )?;
    Ok(json_body(&req, &bytes))
}

fn policy_name(policy: &pagerduty::EscalationPolicy) -> &str {
    policy
        .name
        .as_deref()
        .or(policy.summary.as_deref())
        .unwrap_or(policy.id.as_str())
}

/// `GET /teams`: the teams of `?account=` (or of every account).
///
/// A bare array of PagerDuty teams, each with `account`, sorted by name
/// (case insensitive, like the escalation policies), then account.
#[utoipa::path(
    tag = "backstage",
    params(("account" = Option<String>, Query, description = "Account id (every account when absent or empty)")),
    responses(
        (status = 200, description = "The teams", body = Vec<Object>),
        (status = 400, description = "Unknown account", body = ErrorsBody),
        ReadErrors,
    ),
    security(("bearer" = []))
)]
#[get("/teams")]
pub async fn list_teams(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    let params = Params::parse(&req)?;
    let lists = each_account(&state, &params, Op::Teams, |account| async {
        account
            .cards
            .teams_versioned()
            .await
            .map_err(|e| BackstageError::from_pagerduty(Op::Teams, &e))
    })
    .await?;
    let (accounts, versions) = list_key(&lists);
    let bytes = state
        .rendered
        .bodies
        .get_or_render("teams", "", &accounts, &versions, || {
            let mut teams: Vec<(&str, &str, &pagerduty::Team)> = lists
                .iter()
                .flat_map(|(account, (list, _))| {
                    list.iter().map(move |t| {
                        let name = t.name.as_deref().or(t.summary.as_deref()).unwrap_or("");
                        (name, *account, t)
                    })
                })
                .collect();
            teams.sort_by_cached_key(|(name, account, _)| (name.to_lowercase(), *account));
            let body = teams
                .into_iter()
                .map(|(_, account, team)| with_account(team, account))
                .collect::<Result<Vec<_>>>()?;
            to_bytes(&body)
        })?;
    Ok(json_body(&req, &bytes))
}

/// `GET /accounts`: the configured accounts.
///
/// `{"accounts": []}` when only `[pagerduty]` is configured (as the Node
/// backend answers for its legacy config); otherwise every account with
/// `isDefault` as configured, like the Node backend: a single account not
/// marked `is_default` is still the one used without `?account=`, but is
/// reported `isDefault: false`.
#[utoipa::path(
    tag = "backstage",
    responses(
        (status = 200, description = "The accounts", body = AccountsEnvelope),
        (status = 401, description = "Missing caller token", body = ErrorsBody),
    ),
    security(("bearer" = []))
)]
#[get("/accounts")]
pub async fn list_accounts(state: web::Data<AppState>) -> HttpResponse {
    let accounts = if state.accounts.is_legacy() {
        Vec::new()
    } else {
        state
            .accounts
            .iter()
            .map(|a| AccountEntry {
                id: a.id.clone(),
                is_default: a.marked_default,
            })
            .collect()
    };
    HttpResponse::Ok().json(AccountsEnvelope { accounts })
}
