//! A port's `extra_dhcp_opts` (Neutron's `extra_dhcp_opt` extension): DHCP options by name and value,
//! for DHCPv4 (`ip_version` 4, the default) or DHCPv6, checked as Neutron's API checks them
//! (`neutron_lib/api/definitions/extra_dhcp_opt.py`, `validate_any_key_specs_or_none`) and stored as its
//! DB mixin stores them (`neutron/db/extradhcpopt_db.py`):
//!
//! - each entry is `{"opt_name", "opt_value", "ip_version"?}`, nothing else; the name a one-line
//!   non-blank string of at most 64 characters, the value a one-line non-blank string of at most 255, or
//!   null; `router` and `classless-static-route` may have a blank value (a client told "no router");
//!   `ip_version` an integer (`"4"` is one: the OpenStack client sends strings) of 4 or 6. Otherwise 400
//!   `InvalidInput`, Neutron's message.
//! - a create stores the entries that have a value; two for one (name, IP version) are a 409.
//! - an update merges by (name, IP version) with the port's options: a value replaces the stored one,
//!   null deletes it, a new (name, IP version) is added; the options it does not name stay. An update
//!   without options (or with `[]`, or null) leaves them alone.
//!
//! ```text
//! PUT /v2.0/ports/P  {"port": {"extra_dhcp_opts": [{"opt_name": "mtu", "opt_value": null}, {"opt_name": "ntp-server", "opt_value": "10.0.0.9"}]}}
//!   mtu (IPv4) deleted, ntp-server added, every other option kept
//! ```

use serde_json::{Map, Value};

use super::error::{ApiError, ApiResult};
use crate::model::ExtraDhcpOpt;

/// Options whose value may be blank (`VALID_BLANK_EXTRA_DHCP_OPTS`).
const BLANK_ALLOWED: &[&str] = &["router", "classless-static-route"];
/// `DHCP_OPT_NAME_MAX_LEN`.
const NAME_MAX: usize = 64;
/// `DHCP_OPT_VALUE_MAX_LEN`.
const VALUE_MAX: usize = 255;

/// One entry of a request: its value `None` is null (nothing on a create, a deletion on an update).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Asked {
    name: String,
    value: Option<String>,
    ip_version: u8,
}

/// A request's `extra_dhcp_opts` checked: null is no entry.
pub(super) fn parse(v: &Value) -> ApiResult<Vec<Asked>> {
    let list = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        other => return Err(ApiError::invalid_input(format_args!("'{}' is not a list", py_str(other)))),
    };
    if let Some((i, _)) = list.iter().enumerate().find(|(i, x)| list[..*i].contains(x)) {
        return Err(ApiError::invalid_input(format_args!("Duplicate items in the list: '{}'", py(&list[i]))));
    }
    list.iter().map(entry).collect()
}

/// One entry: an object matching one of Neutron's two key specs.
fn entry(v: &Value) -> ApiResult<Asked> {
    let no_match = || ApiError::invalid_input(format_args!("No valid key specs matched for: {}", py(v)));
    let Value::Object(m) = v else { return Err(no_match()) };
    let (Some(name), Some(value)) = (m.get("opt_name"), m.get("opt_value")) else { return Err(no_match()) };
    if m.keys().any(|k| !matches!(k.as_str(), "opt_name" | "opt_value" | "ip_version")) {
        return Err(no_match());
    }
    let (Value::String(name), Value::String(_) | Value::Null) = (name, value) else { return Err(no_match()) };
    let value = value.as_str();
    let blank_ok = BLANK_ALLOWED.contains(&name.as_str()) && value.is_none_or(|s| s.chars().count() <= VALUE_MAX);
    let plain = one_line(name, NAME_MAX) && value.is_none_or(|s| one_line(s, VALUE_MAX));
    if !blank_ok && !plain {
        return Err(no_match());
    }
    let ip_version = match m.get("ip_version") {
        None => 4,
        Some(x) => match int(x)? {
            4 => 4,
            6 => 6,
            _ => return Err(no_match()),
        },
    };
    Ok(Asked { name: name.clone(), value: value.map(str::to_owned), ip_version })
}

/// Neutron's `oneline_not_empty_string`: not blank, one line, at most `max` characters.
fn one_line(s: &str, max: usize) -> bool {
    !s.trim().is_empty() && s.chars().count() <= max && lines(s) <= 1
}

/// The lines of `s` as Python's `str.splitlines` counts them (a final line break starts no new line).
fn lines(s: &str) -> usize {
    let breaks = ['\n', '\r', '\x0b', '\x0c', '\x1c', '\x1d', '\x1e', '\u{85}', '\u{2028}', '\u{2029}'];
    let s = s.replace("\r\n", "\n");
    let body = s.strip_suffix(breaks).unwrap_or(&s);
    if s.is_empty() {
        0
    } else {
        body.split(breaks).count()
    }
}

/// Neutron's `convert_to_int` (Python's `int()`): integers, numbers (truncated), strings of an integer.
pub(super) fn int(x: &Value) -> ApiResult<i64> {
    let n = match x {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f.trunc() as i64)),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    };
    n.ok_or_else(|| ApiError::invalid_input(format_args!("'{}' is not an integer", py_str(x))))
}

/// Neutron's `_is_valid_opt_value`: what is stored (a value; a non-blank one unless blanks are allowed).
fn storable(name: &str, value: Option<&str>) -> bool {
    match value {
        None => false,
        Some(v) => BLANK_ALLOWED.contains(&name) || !v.is_empty(),
    }
}

/// Neutron's refusal of a second option with one (name, IP version) on a port.
fn duplicate(port_id: &str, o: &Asked) -> ApiError {
    ApiError::conflict(
        "NeutronDbObjectDuplicateEntry",
        format!(
            "Failed to create a duplicate ExtraDhcpOpt: for attribute(s) ['port_id', 'opt_name', 'ip_version'] with value(s) {port_id}-{}-{}",
            o.name, o.ip_version
        ),
    )
}

/// The options a create stores (`_process_port_create_extra_dhcp_opts`).
pub(super) fn on_create(port_id: &str, requested: Vec<Asked>) -> ApiResult<Vec<ExtraDhcpOpt>> {
    on_update(port_id, &[], requested)
}

/// The options after an update (`_update_extra_dhcp_opts_on_port`): each entry is matched against the
/// options the port had by (name, IP version).
pub(super) fn on_update(port_id: &str, cur: &[ExtraDhcpOpt], requested: Vec<Asked>) -> ApiResult<Vec<ExtraDhcpOpt>> {
    let mut out = cur.to_vec();
    let mut added: Vec<(String, u8)> = Vec::new();
    for r in requested {
        let key = (r.name.clone(), r.ip_version);
        let had = cur.iter().any(|o| o.opt_name == r.name && o.ip_version == r.ip_version);
        let at = out.iter().position(|o| o.opt_name == r.name && o.ip_version == r.ip_version);
        match (had, at, r.value.as_deref()) {
            (true, Some(i), None) => {
                out.remove(i);
            }
            (true, Some(i), Some(v)) if storable(&r.name, Some(v)) => out[i].opt_value = v.to_owned(),
            (true, _, _) => {}
            (false, _, v) if storable(&r.name, v) => {
                if added.contains(&key) {
                    return Err(duplicate(port_id, &r));
                }
                out.push(ExtraDhcpOpt {
                    opt_name: r.name.clone(),
                    opt_value: v.unwrap_or_default().to_owned(),
                    ip_version: r.ip_version,
                });
                added.push(key);
            }
            (false, _, _) => {}
        }
    }
    Ok(out)
}

/// A JSON value as Python prints the dict Neutron got (`{'opt_name': 'mtu', 'opt_value': None}`): what its
/// messages quote.
fn py(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(b) => if *b { "True" } else { "False" }.into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.contains('\'') && !s.contains('"') => format!("\"{s}\""),
        Value::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        Value::Array(a) => format!("[{}]", a.iter().map(py).collect::<Vec<_>>().join(", ")),
        Value::Object(m) => py_dict(m),
    }
}

/// A JSON value as Python's `str()` prints it (a string bare, anything else as [`py`]).
fn py_str(v: &Value) -> String {
    v.as_str().map_or_else(|| py(v), str::to_owned)
}

/// A JSON object as Python prints a dict.
fn py_dict(m: &Map<String, Value>) -> String {
    let items: Vec<String> = m.iter().map(|(k, v)| format!("{}: {}", py(&Value::String(k.clone())), py(v))).collect();
    format!("{{{}}}", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A stored option.
    fn opt(name: &str, value: &str, ip_version: u8) -> ExtraDhcpOpt {
        ExtraDhcpOpt { opt_name: name.into(), opt_value: value.into(), ip_version }
    }

    /// The error as the tests read it: its status, type and message.
    fn message(e: ApiError) -> String {
        format!("{e:?}")
    }

    #[test]
    fn entries_are_checked_as_neutron_checks_them() {
        let ok = parse(&json!([{"opt_name": "mtu", "opt_value": "1400"}, {"opt_name": "dns-server", "opt_value": "2001:db8::53", "ip_version": "6"}, {"opt_name": "router", "opt_value": ""}, {"opt_name": "bootfile-name", "opt_value": null, "ip_version": 4}])).unwrap();
        assert_eq!(ok.iter().map(|r| r.ip_version).collect::<Vec<_>>(), [4, 6, 4, 4]);
        assert_eq!(parse(&Value::Null).unwrap(), []);
        for bad in [
            json!([{"opt_name": "mtu", "opt_value": 1400}]),
            json!([{"opt_name": "mtu", "opt_value": "1400", "ip_version": 5}]),
            json!([{"opt_name": "mtu"}]),
            json!([{"opt_name": "", "opt_value": "x"}]),
            json!([{"opt_name": "mtu", "opt_value": "   "}]),
            json!([{"opt_name": "mtu", "opt_value": "a\nb"}]),
            json!([{"opt_name": "mtu", "opt_value": "x", "colour": "blue"}]),
            json!([{"opt_name": "x".repeat(65), "opt_value": "x"}]),
            json!([{"opt_name": "mtu", "opt_value": "x".repeat(256)}]),
            json!(["mtu"]),
            json!({"opt_name": "mtu"}),
            json!([{"opt_name": "mtu", "opt_value": "1"}, {"opt_name": "mtu", "opt_value": "1"}]),
            json!([{"opt_name": "mtu", "opt_value": "1", "ip_version": "four"}]),
        ] {
            let e = message(parse(&bad).unwrap_err());
            assert!(e.contains("InvalidInput") && e.contains("Invalid input for operation: "), "{bad}: {e}");
        }
        let e = message(parse(&json!([{"opt_name": "mtu", "opt_value": 1400}])).unwrap_err());
        assert!(e.contains("No valid key specs matched for: {'opt_name': 'mtu', 'opt_value': 1400}."), "{e}");
        let e = message(parse(&json!([{"opt_name": "mtu", "opt_value": "1", "ip_version": "four"}])).unwrap_err());
        assert!(e.contains("'four' is not an integer."), "{e}");
        assert_eq!((lines("a\n"), lines("a\r\nb"), lines("a\rb"), lines("")), (1, 2, 2, 0));
    }

    #[test]
    fn a_create_stores_what_has_a_value_and_refuses_two_of_one_kind() {
        let r = parse(&json!([{"opt_name": "mtu", "opt_value": "1400"}, {"opt_name": "tftp-server", "opt_value": null}, {"opt_name": "mtu", "opt_value": "1280", "ip_version": 6}])).unwrap();
        assert_eq!(on_create("p", r).unwrap(), [opt("mtu", "1400", 4), opt("mtu", "1280", 6)]);
        let r = parse(&json!([{"opt_name": "mtu", "opt_value": "1400"}, {"opt_name": "mtu", "opt_value": "1500"}]))
            .unwrap();
        let e = message(on_create("p", r).unwrap_err());
        assert!(e.contains("NeutronDbObjectDuplicateEntry") && e.contains("409"), "{e}");
    }

    #[test]
    fn an_update_merges_by_name_and_ip_version() {
        let cur =
            [opt("mtu", "1400", 4), opt("mtu", "1280", 6), opt("ntp-server", "10.0.0.9", 4), opt("router", "", 4)];
        let r = parse(&json!([
            {"opt_name": "mtu", "opt_value": null},
            {"opt_name": "ntp-server", "opt_value": "10.0.0.10"},
            {"opt_name": "tftp-server", "opt_value": "10.0.0.11"},
            {"opt_name": "bootfile-name", "opt_value": null},
            {"opt_name": "router", "opt_value": "10.0.0.1"},
        ]))
        .unwrap();
        assert_eq!(
            on_update("p", &cur, r).unwrap(),
            [
                opt("mtu", "1280", 6),
                opt("ntp-server", "10.0.0.10", 4),
                opt("router", "10.0.0.1", 4),
                opt("tftp-server", "10.0.0.11", 4)
            ],
            "IPv4's mtu deleted, IPv6's kept; a new one added; a null for an unknown one ignored"
        );
        assert_eq!(on_update("p", &cur, Vec::new()).unwrap(), cur, "nothing asked, nothing changed");
    }
}
