//! `GET /oncall-users`: who is on call for some escalation policies.

use std::collections::HashSet;

use actix_web::{HttpRequest, HttpResponse, get, web};
use pagerduty::{Oncall, User};

use super::envelopes::{OncallsEnvelope, UsersEnvelope, json_body, json_of, to_bytes};
use super::error::{BackstageError, ErrorsBody, Op, ReadErrors};
use super::params::{Params, Result, within};
use crate::accounts::Account;
use crate::state::AppState;

/// Most escalation policies one on-call request may name.
const MAX_POLICIES: usize = 20;

/// The Node backend's level rule for one policy: only the lowest level
/// that has someone on call.
fn lowest_level(oncalls: &[Oncall]) -> impl Iterator<Item = &User> {
    let lowest = oncalls.iter().map(|o| o.escalation_level).min();
    oncalls
        .iter()
        .filter(move |o| Some(o.escalation_level) == lowest)
        .map(|o| &o.user)
}

/// Users of several policies' lowest levels, sorted by name, each once.
fn merge_oncall_users<'a>(per_policy: impl IntoIterator<Item = &'a [Oncall]>) -> Vec<&'a User> {
    let mut users: Vec<&User> = per_policy.into_iter().flat_map(lowest_level).collect();
    users.sort_by(|a, b| a.name.cmp(&b.name));
    let mut seen = HashSet::new();
    users.retain(|u| seen.insert(u.id.clone()));
    users
}

/// `GET /oncall-users?escalation_policy_ids[]=…`: who is on call.
///
/// Accepts `escalation_policy_ids[]` (literal or percent-encoded brackets)
/// and `escalation_policy_ids`, repeated or comma-separated. Per policy the
/// users of the lowest level with someone on call (a level-1 gap does not
/// hide everyone); all of them sorted by name, each user once.
#[utoipa::path(
    tag = "backstage",
    params(
        ("escalation_policy_ids[]" = Vec<String>, Query, description = "Escalation policy ids (also `escalation_policy_ids`)"),
        ("account" = Option<String>, Query, description = "Account id"),
    ),
    responses(
        (status = 200, description = "The on-call users (full PagerDuty user objects)", body = UsersEnvelope),
        (status = 400, description = "No policy id, or unknown account", body = ErrorsBody),
        ReadErrors,
    ),
    security(("bearer" = []))
)]
#[get("/oncall-users")]
pub async fn oncall_users(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    let params = Params::parse(&req)?;
    let account = params.account(&state)?;
    let ids = policy_ids(&params)?;
    let per_policy = within(&state, Op::Oncalls, async {
        futures::future::try_join_all(ids.iter().map(|id| async {
            account
                .cards
                .raw_oncalls(id)
                .await
                .map_err(|e| BackstageError::from_card(Op::Oncalls, &e))
        }))
        .await
    })
    .await?;
    let versions: Vec<u64> = per_policy.iter().map(|c| c.version).collect();
    let bytes = state.rendered.bodies.get_or_render(
        "oncall-users",
        &account.id,
        &ids.join(","),
        &versions,
        || {
            let users = merge_oncall_users(per_policy.iter().map(|c| c.value.as_slice()))
                .into_iter()
                .map(json_of)
                .collect::<Result<_>>()?;
            to_bytes(&UsersEnvelope { users })
        },
    )?;
    Ok(json_body(&req, &bytes))
}

/// The distinct `escalation_policy_ids[]` (1 to [`MAX_POLICIES`]).
fn policy_ids(params: &Params) -> Result<Vec<String>> {
    params
        .distinct_ids("escalation_policy_ids", MAX_POLICIES)
        .map_err(BackstageError::bad_request)
}

/// Every on-call entry of the policies (every level, users and schedules
/// included), as cached: what PagerDuty's `GET /oncalls` lists.
pub(super) struct EveryLevel(Vec<cards::Cached<cards::Kept<Vec<Oncall>>>>);

impl EveryLevel {
    /// The versions of the cached entries (what a rendered body is kept by).
    pub(super) fn versions(&self) -> Vec<u64> {
        self.0.iter().map(|c| c.version).collect()
    }

    /// The entries policy by policy in the order given, each by level.
    pub(super) fn oncalls(&self) -> Vec<&Oncall> {
        self.0
            .iter()
            .flat_map(|cached| {
                let mut oncalls: Vec<&Oncall> = cached.value.iter().collect();
                oncalls.sort_by_key(|o| o.escalation_level);
                oncalls
            })
            .collect()
    }
}

/// The on-calls of `ids` from the card cache (nothing is copied: a body
/// still current for their versions is answered as it is).
pub(super) async fn every_level(
    account: &Account,
    ids: &[String],
) -> std::result::Result<EveryLevel, cards::CardError> {
    futures::future::try_join_all(ids.iter().map(|id| account.cards.raw_oncalls(id)))
        .await
        .map(EveryLevel)
}

/// `GET /oncalls?escalation_policy_ids[]=…`: PagerDuty's raw on-calls.
///
/// Every level of each policy (not only the lowest, as `/oncall-users`
/// answers), with users and schedules, as PagerDuty's newer plugin actions
/// read them: `{"oncalls": […]}`.
#[utoipa::path(
    tag = "backstage",
    params(
        ("escalation_policy_ids[]" = Vec<String>, Query, description = "Escalation policy ids (also `escalation_policy_ids`)"),
        ("account" = Option<String>, Query, description = "Account id"),
    ),
    responses(
        (status = 200, description = "The on-call entries, every level", body = OncallsEnvelope),
        (status = 400, description = "No policy id, or unknown account", body = ErrorsBody),
        ReadErrors,
    ),
    security(("bearer" = []))
)]
#[get("/oncalls")]
pub async fn list_oncalls(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    let params = Params::parse(&req)?;
    let account = params.account(&state)?;
    let ids = policy_ids(&params)?;
    let levels = within(&state, Op::Oncalls, async {
        every_level(account, &ids)
            .await
            .map_err(|e| BackstageError::from_card(Op::Oncalls, &e))
    })
    .await?;
    let bytes = state.rendered.bodies.get_or_render(
        "oncalls",
        &account.id,
        &ids.join(","),
        &levels.versions(),
        || {
            to_bytes(&OncallsEnvelope {
                oncalls: levels
                    .oncalls()
                    .into_iter()
                    .map(json_of)
                    .collect::<Result<_>>()?,
            })
        },
    )?;
    Ok(json_body(&req, &bytes))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn oncall(level: u32, id: &str, name: &str) -> Oncall {
        serde_json::from_value(json!({
            "escalation_policy": {"id": "PEP", "type": "escalation_policy_reference"},
            "escalation_level": level,
            "user": {"id": id, "name": name, "type": "user"},
        }))
        .unwrap()
    }

    #[test]
    fn lowest_non_empty_level_sorted_and_deduplicated() {
        // Level 1 is empty here: level 2 is shown, not level 3.
        let a = vec![
            oncall(3, "P3", "Zed"),
            oncall(2, "P2", "Bob"),
            oncall(2, "P1", "Alice"),
            oncall(2, "P2", "Bob"),
        ];
        let b = vec![oncall(1, "P1", "Alice"), oncall(2, "P9", "Nope")];
        let users = merge_oncall_users([a.as_slice(), b.as_slice()]);
        let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(ids, ["P1", "P2"]);
        assert!(merge_oncall_users([[].as_slice()]).is_empty());
    }
}
