//! Parsing like Express does, the account(s) a request is about, and the
//! request deadline, shared by every Backstage handler.

use std::future::Future;
use std::sync::Arc;

use actix_web::{HttpRequest, web};

use super::error::{BackstageError, Op};
use crate::accounts::Account;
use crate::degraded::OptionalSection;
use crate::http::deadline;
use crate::state::AppState;

pub(super) type Result<T> = std::result::Result<T, BackstageError>;

/// The decoded query string (`a[]=1`, `a%5B%5D=1` and `a=1` all decode to
/// their plain key and value; repeated keys are kept).
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    pub(super) fn parse(req: &HttpRequest) -> Result<Params> {
        Self::from_query(req.query_string())
            .map_err(|e| BackstageError::bad_request(format!("invalid query string: {e}")))
    }

    pub(super) fn from_query(query: &str) -> std::result::Result<Params, String> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(query)
            .map(Params)
            .map_err(|e| e.to_string())
    }

    /// These parameters with `account` first (a body's account wins over
    /// the query's).
    pub(super) fn with_account(mut self, account: &str) -> Params {
        self.0.insert(0, ("account".to_owned(), account.to_owned()));
        self
    }

    /// The first non-empty value of `name`.
    pub(super) fn first(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim())
    }

    pub(super) fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    /// Every value of the given keys, comma-separated values split.
    pub(super) fn all(&self, names: &[&str]) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| names.contains(&k.as_str()))
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The distinct ids of `name[]` (also plain `name`, repeated or
    /// comma-separated): 1 to `max`, each a PagerDuty id. The error says
    /// which rule failed, without echoing a value (it may be a pasted secret).
    pub(super) fn distinct_ids(
        &self,
        name: &str,
        max: usize,
    ) -> std::result::Result<Vec<String>, String> {
        let array = format!("{name}[]");
        let mut ids = self.all(&[array.as_str(), name]);
        let mut seen = std::collections::HashSet::new();
        ids.retain(|id| seen.insert(id.clone()));
        if ids.is_empty() {
            return Err(format!("'{array}' is required"));
        }
        if ids.len() > max {
            return Err(format!("at most {max} '{array}' per request"));
        }
        if !ids.iter().all(|id| pagerduty::ids::is_pagerduty_id(id)) {
            return Err(format!("'{array}' {}", pagerduty::InvalidId::RULE));
        }
        Ok(ids)
    }

    /// The account `?account=` names (the default when absent or empty).
    pub(super) fn account<'a>(&self, state: &'a AppState) -> Result<&'a Arc<Account>> {
        Ok(state.account(self.first("account"))?)
    }

    /// The account `?account=` names, or `None` when it is absent or empty:
    /// for routes about store rows or the catalog, where no account means
    /// "any" (a lookup filters by it; settings are global and only check
    /// it). An unknown id is still the 400 listing the valid ones.
    pub(super) fn account_filter<'a>(
        &self,
        state: &'a AppState,
    ) -> Result<Option<&'a Arc<Account>>> {
        match self.first("account") {
            Some(_) => Ok(Some(self.account(state)?)),
            None => Ok(None),
        }
    }

    /// The accounts an all-accounts list covers: the one `?account=` names,
    /// or every account when it is absent or empty (`?account=` alone
    /// filters nothing, on every list route alike).
    pub(super) fn accounts<'a>(&self, state: &'a AppState) -> Result<Vec<&'a Arc<Account>>> {
        Ok(match self.first("account") {
            Some(_) => vec![self.account(state)?],
            None => state.accounts.iter().collect(),
        })
    }
}

/// Runs `work` within the request deadline; past it, the 504 worded for `op`.
pub(super) async fn within<T>(
    state: &AppState,
    op: Op,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    // Boxed: the cache reads are large futures (clippy::large_futures).
    deadline::within(state.request_deadline, Box::pin(work))
        .await
        .map_err(|e| BackstageError::deadline(op, e.deadline))?
}

/// Reads one thing from every account the request covers (`?account=`, or
/// every account), concurrently and within the request deadline, each
/// result with its account id.
pub(super) async fn each_account<'a, T, Fut>(
    state: &'a AppState,
    params: &Params,
    op: Op,
    read: impl Fn(&'a Arc<Account>) -> Fut,
) -> Result<Vec<(&'a str, T)>>
where
    Fut: Future<Output = Result<T>>,
{
    let accounts = params.accounts(state)?;
    within(state, op, async {
        futures::future::try_join_all(accounts.into_iter().map(|account| {
            let read = read(account);
            async move { Ok((account.id.as_str(), read.await?)) }
        }))
        .await
    })
    .await
}

/// The shared body of the per-service routes: the account (`?account=`), the
/// checked id, and one read from that account's card cache within the
/// request deadline, its failure worded for `op`. Returns the value and the
/// account it came from.
pub(super) async fn read_for_service<'a, T, Fut>(
    req: &HttpRequest,
    state: &'a AppState,
    service_id: web::Path<String>,
    op: Op,
    read: impl FnOnce(cards::CardService, String) -> Fut,
) -> Result<(T, &'a Arc<Account>)>
where
    Fut: Future<Output = std::result::Result<T, cards::CardError>>,
{
    let (account, id) = service_target(req, state, service_id)?;
    let read = read(account.cards.clone(), id);
    let value = within(state, op, async {
        read.await.map_err(|e| BackstageError::from_card(op, &e))
    })
    .await?;
    Ok((value, account))
}

/// Like [`read_for_service`], for a section a card can do without
/// (standards, metrics): when PagerDuty refuses it (401, 402, 403, 404;
/// see [`cards::CardError::refusal`]) the answer is `None` rather than an
/// error, so PagerDuty's card still renders (with "-"), and the refusal is
/// recorded for the operator ([`crate::degraded`]). Any other failure
/// (rate limit, timeout, PagerDuty down) stays an error: it may pass, and
/// the frontend shows it.
pub(super) async fn read_optional<'a, T, Fut>(
    req: &HttpRequest,
    state: &'a AppState,
    service_id: web::Path<String>,
    op: Op,
    section: OptionalSection,
    read: impl FnOnce(cards::CardService, String) -> Fut,
) -> Result<(Option<T>, &'a Arc<Account>)>
where
    Fut: Future<Output = std::result::Result<T, cards::CardError>>,
{
    let (account, id) = service_target(req, state, service_id)?;
    let read = read(account.cards.clone(), id);
    let value = within(state, op, async {
        match read.await {
            Ok(value) => {
                state.degraded.served(&account.id, section);
                Ok(Some(value))
            }
            Err(e) => match e.refusal() {
                Some(refusal) => {
                    state.degraded.refused(&account.id, section, &refusal);
                    Ok(None)
                }
                None => Err(BackstageError::from_card(op, &e)),
            },
        }
    })
    .await?;
    Ok((value, account))
}

/// The account (`?account=`) and the checked service id of a per-service route.
fn service_target<'a>(
    req: &HttpRequest,
    state: &'a AppState,
    service_id: web::Path<String>,
) -> Result<(&'a Arc<Account>, String)> {
    let params = Params::parse(req)?;
    let account = params.account(state)?;
    let id = service_id.into_inner();
    check_service_id(&id)?;
    Ok((account, id))
}

/// PagerDuty ids are short alphanumeric strings.
pub(super) fn check_service_id(id: &str) -> Result<()> {
    if !pagerduty::ids::is_pagerduty_id(id) {
        return Err(BackstageError::bad_request(
            "':serviceId' must be a PagerDuty id (1 to 64 letters and digits)",
        ));
    }
    Ok(())
}
