//! The dependency graph between services, with PagerDuty's limits: at most
//! [`MAX_DEPENDENCIES`] per service and chains at most [`MAX_DEPTH`] deep
//! (so no cycle: it would be infinitely deep).

use std::collections::BTreeMap;

use super::{AccountView, ServiceDependency};

/// Dependencies (either side) one service may have.
pub const MAX_DEPENDENCIES: usize = 2_000;
/// Longest chain of dependencies through any service.
pub const MAX_DEPTH: usize = 100;

/// Why a dependency may not be added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DependencyError {
    /// A service cannot depend on itself.
    SelfDependency,
    /// One of the services already has [`MAX_DEPENDENCIES`].
    TooMany(String),
    /// The dependency would close a cycle.
    Cycle,
    /// The dependency would make a chain longer than [`MAX_DEPTH`].
    TooDeep(usize),
}

impl std::fmt::Display for DependencyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SelfDependency => f.write_str("a service cannot depend on itself"),
            Self::TooMany(id) => write!(
                f,
                "service {id} already has the maximum of {MAX_DEPENDENCIES} dependencies"
            ),
            Self::Cycle => f.write_str("the dependency would create a cycle"),
            Self::TooDeep(depth) => write!(
                f,
                "the dependency would make a chain {depth} deep (the limit is {MAX_DEPTH})"
            ),
        }
    }
}

impl AccountView {
    /// The immediate dependencies of a service, on either side, oldest first.
    pub fn dependencies_of(&self, service_id: &str) -> Vec<&ServiceDependency> {
        self.dependencies
            .iter()
            .filter(|d| {
                d.supporting_service_id == service_id || d.dependent_service_id == service_id
            })
            .collect()
    }

    /// The dependency of `dependent` on `supporting`, if there is one.
    pub fn dependency(&self, supporting: &str, dependent: &str) -> Option<&ServiceDependency> {
        self.dependencies
            .iter()
            .find(|d| d.supporting_service_id == supporting && d.dependent_service_id == dependent)
    }

    /// Whether `dependent` may start depending on `supporting` (both
    /// existing services, not yet related that way).
    pub fn check_dependency(
        &self,
        supporting: &str,
        dependent: &str,
    ) -> Result<(), DependencyError> {
        check(&self.dependencies, supporting, dependent)
    }
}

/// [`AccountView::check_dependency`] against any set of dependencies (a
/// request adding several checks each against the ones before it).
pub(crate) fn check(
    dependencies: &[ServiceDependency],
    supporting: &str,
    dependent: &str,
) -> Result<(), DependencyError> {
    {
        if supporting == dependent {
            return Err(DependencyError::SelfDependency);
        }
        for id in [supporting, dependent] {
            let count = dependencies
                .iter()
                .filter(|d| d.supporting_service_id == id || d.dependent_service_id == id)
                .count();
            if count >= MAX_DEPENDENCIES {
                return Err(DependencyError::TooMany(id.to_owned()));
            }
        }
        // Edges point from the supporting service to its dependents.
        let mut down: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut up: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for d in dependencies {
            down.entry(&d.supporting_service_id)
                .or_default()
                .push(&d.dependent_service_id);
            up.entry(&d.dependent_service_id)
                .or_default()
                .push(&d.supporting_service_id);
        }
        if reaches(&down, dependent, supporting) {
            return Err(DependencyError::Cycle);
        }
        // The graph is acyclic, so the longest chains are finite.
        let depth = longest(&up, supporting) + 1 + longest(&down, dependent);
        if depth > MAX_DEPTH {
            return Err(DependencyError::TooDeep(depth));
        }
        Ok(())
    }
}

fn reaches(edges: &BTreeMap<&str, Vec<&str>>, from: &str, to: &str) -> bool {
    let mut stack = vec![from];
    let mut seen = std::collections::BTreeSet::new();
    while let Some(node) = stack.pop() {
        if node == to {
            return true;
        }
        if seen.insert(node) {
            stack.extend(edges.get(node).into_iter().flatten().copied());
        }
    }
    false
}

/// Edges on the longest path from `from` (0 when it has none).
fn longest(edges: &BTreeMap<&str, Vec<&str>>, from: &str) -> usize {
    fn go<'a>(
        edges: &BTreeMap<&'a str, Vec<&'a str>>,
        node: &'a str,
        memo: &mut BTreeMap<&'a str, usize>,
    ) -> usize {
        if let Some(&d) = memo.get(node) {
            return d;
        }
        let d = edges
            .get(node)
            .into_iter()
            .flatten()
            .map(|next| 1 + go(edges, next, memo))
            .max()
            .unwrap_or(0);
        memo.insert(node, d);
        d
    }
    go(edges, from, &mut BTreeMap::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn account() -> AccountView {
        AccountView::generate(7, 6, Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap())
    }

    fn link(a: &mut AccountView, supporting: &str, dependent: &str) {
        a.dependencies.push(ServiceDependency {
            id: format!("D{supporting}{dependent}"),
            supporting_service_id: supporting.to_owned(),
            dependent_service_id: dependent.to_owned(),
        });
    }

    #[test]
    fn self_dependencies_and_cycles_are_refused() {
        let mut a = account();
        let ids: Vec<String> = a.services.iter().map(|s| s.id.clone()).collect();
        assert_eq!(
            a.check_dependency(&ids[0], &ids[0]),
            Err(DependencyError::SelfDependency)
        );
        link(&mut a, &ids[0], &ids[1]);
        link(&mut a, &ids[1], &ids[2]);
        // 2 depends on 1 on 0: 0 depending on 2 closes the loop.
        assert_eq!(
            a.check_dependency(&ids[2], &ids[0]),
            Err(DependencyError::Cycle)
        );
        assert_eq!(a.check_dependency(&ids[0], &ids[2]), Ok(()));
        assert_eq!(a.dependencies_of(&ids[1]).len(), 2);
        assert!(a.dependency(&ids[0], &ids[1]).is_some());
        assert!(a.dependency(&ids[1], &ids[0]).is_none());
    }

    #[test]
    fn chains_longer_than_the_limit_are_refused() {
        let mut a = account();
        // A chain of MAX_DEPTH edges through made-up ids.
        let chain: Vec<String> = (0..=MAX_DEPTH).map(|i| format!("PCHAIN{i}")).collect();
        for pair in chain.windows(2) {
            link(&mut a, &pair[0], &pair[1]);
        }
        let (first, last) = (&chain[0], &chain[MAX_DEPTH]);
        assert_eq!(
            a.check_dependency("PBEFORE", first),
            Err(DependencyError::TooDeep(MAX_DEPTH + 1))
        );
        assert_eq!(
            a.check_dependency(last, "PAFTER"),
            Err(DependencyError::TooDeep(MAX_DEPTH + 1))
        );
        assert_eq!(a.check_dependency(&chain[1], "PSIDE"), Ok(()));
    }
}
