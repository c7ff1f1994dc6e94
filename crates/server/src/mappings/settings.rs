//! The admin page's settings: which ids exist and which values each takes
//! (the Node backend's two, unknown ones refused so a typo is never stored).

use super::MappingError;

/// Every known setting id with its valid values.
pub const KNOWN_SETTINGS: &[(&str, &[&str])] = &[
    (
        "settings::service-dependency-sync-strategy",
        &["backstage", "pagerduty", "both", "disabled"],
    ),
    ("settings::data-sync", &["enabled", "disabled"]),
];

fn values_of(id: &str) -> Option<&'static [&'static str]> {
    KNOWN_SETTINGS
        .iter()
        .find(|(known, _)| *known == id)
        .map(|(_, values)| *values)
}

/// `id` is a known setting.
pub(super) fn check_id(id: &str) -> Result<&'static [&'static str], MappingError> {
    values_of(id).ok_or_else(|| {
        MappingError::invalid(
            "id",
            format!(
                "`{id}` is not a known setting: valid ids are {}",
                KNOWN_SETTINGS
                    .iter()
                    .map(|(k, _)| *k)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

/// `value` is valid for the known setting `id`.
pub fn check_setting(id: &str, value: &str) -> Result<(), MappingError> {
    let values = check_id(id)?;
    if !values.contains(&value) {
        return Err(MappingError::invalid(
            "value",
            format!(
                "`{value}` is not a valid value for setting {id}: valid values are {}",
                values.join(", ")
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_ids_and_values_are_named() {
        assert!(check_setting("settings::data-sync", "enabled").is_ok());
        let e = check_setting("settings::nope", "x")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("settings::nope") && e.contains("settings::data-sync"),
            "{e}"
        );
        let e = check_setting("settings::data-sync", "maybe")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("value") && e.contains("maybe") && e.contains("enabled, disabled"),
            "{e}"
        );
    }
}
