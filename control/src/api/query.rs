//! A list request's query, as Neutron reads it: filters (validated: `filter-validation`), `fields`,
//! sorting (`sort_key`, `sort_dir`: `sorting`) and pagination (`limit`, `marker`, `page_reverse`, with
//! `<many>_links`: `pagination`).
//!
//! - A filter is `attribute=value`, repeated for any of several values; `tenant_id` is `project_id`.
//!   A list attribute matches if it holds the value. Ports also take `fixed_ips=ip_address=A`,
//!   `fixed_ips=subnet_id=S` and `fixed_ips=ip_address_substr=P` (`ip-substring-filtering`): one fixed
//!   IP must match them all. Tags: `tags`, `tags-any`, `not-tags`, `not-tags-any` (comma-separated);
//!   `changed_since=TIME`: `updated_at` at or after it.
//!   An attribute the resource does not have is a 400, as Neutron with `filter-validation`.
//! - Sorting compares strings without case first (as Neutron's database does), then with it; `id` ends
//!   every sort so pages are stable.
//! - A page: `limit` objects after `marker` (or before it with `page_reverse`), in the sort's order.
//!   Links as Neutron's `get_pagination_links`: `next` unless a forward page came out short,
//!   `previous` unless a reverse page did.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};

/// Filter names every resource takes beyond its attributes: tags, and `changed_since`
/// (`standard-attr-timestamp`: `updated_at` at or after a time).
const EXTRA_FILTERS: &[&str] = &["tags", "tags-any", "not-tags", "not-tags-any", "changed_since"];

/// A list request's query.
#[derive(Debug, Default)]
pub(super) struct ListQuery<'q> {
    fields: Vec<&'q str>,
    filters: Vec<(&'q str, Vec<&'q str>)>,
    sort: Vec<(&'q str, bool)>,
    limit: Option<usize>,
    marker: Option<&'q str>,
    page_reverse: bool,
    /// The request's parameters, for the links.
    raw: &'q [(String, String)],
}

impl<'q> ListQuery<'q> {
    /// The query of `raw`, its filters and sort keys checked against `known` (an attribute the
    /// resource has).
    pub(super) fn parse(raw: &'q [(String, String)], known: impl Fn(&str) -> bool) -> ApiResult<ListQuery<'q>> {
        let mut q = ListQuery { raw, ..ListQuery::default() };
        let mut filters: HashMap<&str, Vec<&str>> = HashMap::new();
        let (mut keys, mut dirs) = (Vec::new(), Vec::new());
        for (k, v) in raw {
            let (k, v) = (k.as_str(), v.as_str());
            match k {
                "fields" => q.fields.push(v),
                "sort_key" => keys.push(v),
                "sort_dir" => dirs.push(v),
                "limit" => {
                    let n: i64 = v
                        .parse()
                        .map_err(|_| ApiError::bad(format!("Limit must be an integer 0 or greater and not '{v}'")))?;
                    // Neutron: 0 (or a negative number) is no limit.
                    q.limit = usize::try_from(n).ok().filter(|n| *n > 0);
                }
                "marker" => q.marker = Some(v),
                "page_reverse" => q.page_reverse = boolean(v)?,
                _ => {
                    let k = if k == "tenant_id" { "project_id" } else { k };
                    if k == "changed_since" && !is_time(v) {
                        return Err(ApiError::bad(format!("Invalid input for changed_since: '{v}' is not a datetime")));
                    }
                    if !known(k) && !EXTRA_FILTERS.contains(&k) {
                        return Err(ApiError::bad(format!("{k} is invalid attribute for filtering")));
                    }
                    filters.entry(k).or_default().push(v);
                }
            }
        }
        if !dirs.is_empty() && dirs.len() != keys.len() {
            return Err(ApiError::bad("The number of sort_keys and sort_dirs must be same"));
        }
        for (i, k) in keys.iter().enumerate() {
            if !known(k) {
                return Err(ApiError::bad(format!("{k} is an invalid attribute for sort_keys")));
            }
            let asc = match dirs.get(i).copied().unwrap_or("asc") {
                "asc" => true,
                "desc" => false,
                d => {
                    return Err(ApiError::bad(format!(
                        "{d} is invalid value for sort_dirs, valid values are 'asc' and 'desc'"
                    )))
                }
            };
            q.sort.push((k, asc));
        }
        q.filters = filters.into_iter().collect();
        Ok(q)
    }

    /// Whether `o` passes every filter.
    pub(super) fn matches(&self, o: &Value) -> bool {
        self.filters.iter().all(|(k, vs)| match *k {
            "fixed_ips" => fixed_ips_match(&o["fixed_ips"], vs),
            "tags" => tags(vs).all(|t| has_tag(o, t)),
            "tags-any" => tags(vs).any(|t| has_tag(o, t)),
            "not-tags" => !tags(vs).all(|t| has_tag(o, t)),
            "not-tags-any" => !tags(vs).any(|t| has_tag(o, t)),
            "changed_since" => vs.iter().all(|t| o["updated_at"].as_str().is_some_and(|u| u >= *t)),
            _ => vs.iter().any(|want| equals(&o[*k], want)),
        })
    }

    /// The list body: the objects that pass the filters, sorted, the page of them, with `fields`,
    /// under `many`, with `<many>_links` when paginated (links to `path` on `host`).
    pub(super) fn respond(&self, objects: Vec<Value>, many: &str, host: &str, path: &str) -> ApiResult<Value> {
        let mut seen: Vec<Value> = objects.into_iter().filter(|o| self.matches(o)).collect();
        if !self.sort.is_empty() || self.limit.is_some() {
            seen.sort_by(|a, b| self.order(a, b));
        }
        let page = match self.limit {
            None => seen,
            Some(limit) => self.page(seen, limit)?,
        };
        let mut body = json!({ many: page.iter().map(|o| select(o.clone(), &self.fields)).collect::<Vec<_>>() });
        if let Some(limit) = self.limit {
            body[format!("{many}_links")] = Value::Array(self.links(&page, limit, host, path));
        }
        Ok(body)
    }

    fn order(&self, a: &Value, b: &Value) -> Ordering {
        for (k, asc) in &self.sort {
            let o = compare(&a[*k], &b[*k]);
            if o != Ordering::Equal {
                return if *asc { o } else { o.reverse() };
            }
        }
        compare(&a["id"], &b["id"])
    }

    /// The `limit` objects after the marker (before it, reversed), in order; 404 for a marker that is
    /// not there.
    fn page(&self, sorted: Vec<Value>, limit: usize) -> ApiResult<Vec<Value>> {
        let at = match self.marker {
            None => None,
            Some(m) => Some(sorted.iter().position(|o| o["id"] == m).ok_or_else(|| {
                ApiError::new(axum::http::StatusCode::NOT_FOUND, "NotFound", format!("Marker {m} could not be found."))
            })?),
        };
        Ok(if self.page_reverse {
            let end = at.unwrap_or(sorted.len());
            let start = end.saturating_sub(limit);
            sorted[start..end].to_vec()
        } else {
            let start = at.map_or(0, |i| i + 1);
            sorted.into_iter().skip(start).take(limit).collect()
        })
    }

    fn links(&self, page: &[Value], limit: usize, host: &str, path: &str) -> Vec<Value> {
        let short = page.len() < limit;
        let href = |marker: Option<&Value>, reverse: bool| {
            let mut params: Vec<(&str, String)> = self
                .raw
                .iter()
                .filter(|(k, _)| k != "marker" && k != "page_reverse")
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect();
            if let Some(m) = marker.and_then(|o| o["id"].as_str()) {
                params.push(("marker", m.to_owned()));
            }
            if reverse {
                params.push(("page_reverse", "True".to_owned()));
            }
            let q: Vec<String> = params.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
            format!("http://{host}{path}?{}", q.join("&"))
        };
        let mut links = Vec::new();
        if !short || self.page_reverse {
            links.push(json!({"rel": "next", "href": href(page.last(), false)}));
        }
        if !(short && self.page_reverse) {
            links.push(json!({"rel": "previous", "href": href(page.first(), true)}));
        }
        links
    }
}

/// `YYYY-MM-DDTHH:MM:SS`, then anything (fractions, a zone): how Neutron's times compare as text.
fn is_time(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() >= 19
        && b.iter().take(19).enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

/// Neutron's `convert_to_boolean` for a body's value: a JSON boolean, or `true`/`false`, `1`/`0`,
/// `yes`/`no`, `on`/`off`, `t`/`f`, `y`/`n` in any case, as a string or a number.
pub(super) fn convert_to_boolean(v: &Value) -> ApiResult<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => boolean(s),
        other => boolean(&other.to_string()),
    }
}

/// [`convert_to_boolean`] on each of `keys` a request has, in place.
pub(super) fn booleans_in(attrs: &mut super::crud::Attrs, keys: &[&str]) -> ApiResult<()> {
    for k in keys {
        if let Some(v) = attrs.get(*k) {
            let b = convert_to_boolean(v)?;
            attrs.insert((*k).into(), b.into());
        }
    }
    Ok(())
}

/// An `ip_version` in a request: Neutron's `convert_to_int`, then 4 or 6.
pub(super) fn convert_ip_version(v: &Value) -> ApiResult<u8> {
    match super::extra_dhcp_opts::int(v)? {
        4 => Ok(4),
        6 => Ok(6),
        n => Err(ApiError::bad(format!("Invalid input for ip_version. Reason: {n} is not in [4, 6]."))),
    }
}

/// Neutron's `convert_to_boolean` for a query value.
fn boolean(v: &str) -> ApiResult<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "t" | "y" => Ok(true),
        "false" | "0" | "no" | "off" | "f" | "n" => Ok(false),
        _ => Err(ApiError::invalid_input(format_args!("'{v}' cannot be converted to boolean"))),
    }
}

/// Whether attribute value `v` equals the query's `want` (a list: holds it).
fn equals(v: &Value, want: &str) -> bool {
    match v {
        Value::String(s) => s == want,
        Value::Bool(b) => boolean(want).is_ok_and(|w| w == *b),
        Value::Number(n) => n.to_string() == want,
        Value::Array(a) => a.iter().any(|x| x.as_str() == Some(want)),
        Value::Null => want.is_empty() || want == "None",
        Value::Object(_) => false,
    }
}

/// `fixed_ips=ip_address=A`, `…=subnet_id=S`, `…=ip_address_substr=P`: one fixed IP matches each kind
/// given (any of a kind's values).
fn fixed_ips_match(ips: &Value, wants: &[&str]) -> bool {
    let mut by: HashMap<&str, Vec<&str>> = HashMap::new();
    for w in wants {
        let (k, v) = w.split_once('=').unwrap_or(("", w));
        by.entry(k).or_default().push(v);
    }
    let Some(ips) = ips.as_array() else { return false };
    ips.iter().any(|ip| {
        by.iter().all(|(k, vs)| {
            let field = |f: &str| ip[f].as_str().unwrap_or("");
            match *k {
                "ip_address" | "subnet_id" => vs.contains(&field(k)),
                "ip_address_substr" => vs.iter().any(|v| field("ip_address").contains(v)),
                _ => false,
            }
        })
    })
}

fn tags<'a>(vs: &'a [&'a str]) -> impl Iterator<Item = &'a str> + Clone {
    vs.iter().flat_map(|v| v.split(',')).filter(|t| !t.is_empty())
}

fn has_tag(o: &Value, t: &str) -> bool {
    o["tags"].as_array().is_some_and(|a| a.iter().any(|x| x.as_str() == Some(t)))
}

/// Neutron's database order: nulls first, then booleans, numbers, strings (without case, then with).
fn compare(a: &Value, b: &Value) -> Ordering {
    let rank = |v: &Value| match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        _ => 4,
    };
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => {
            x.as_f64().unwrap_or(0.0).partial_cmp(&y.as_f64().unwrap_or(0.0)).unwrap_or(Ordering::Equal)
        }
        (Value::String(x), Value::String(y)) => x.to_lowercase().cmp(&y.to_lowercase()).then_with(|| x.cmp(y)),
        _ => rank(a).cmp(&rank(b)).then_with(|| a.to_string().cmp(&b.to_string())),
    }
}

/// `o` with only the `fields` asked for (all if none).
pub(super) fn select(o: Value, fields: &[&str]) -> Value {
    if fields.is_empty() {
        return o;
    }
    let Value::Object(m) = o else { return o };
    Value::Object(m.into_iter().filter(|(k, _)| fields.contains(&k.as_str())).collect())
}

/// Percent-encoding of a query component (RFC 3986 unreserved characters kept).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &[(&str, &str)]) -> Vec<(String, String)> {
        s.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn objects() -> Vec<Value> {
        vec![
            json!({"id": "a", "name": "x", "up": true, "mtu": 1500, "tags": ["t1", "t2"], "project_id": "p",
                   "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.5"}]}),
            json!({"id": "b", "name": "Y", "up": false, "mtu": 9000, "tags": ["t2"], "project_id": "p",
                   "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.15"}, {"subnet_id": "s2", "ip_address": "10.1.0.5"}]}),
            json!({"id": "c", "name": "z", "up": true, "mtu": 1450, "tags": [], "project_id": "q", "fixed_ips": []}),
        ]
    }

    fn run(raw: &[(&str, &str)]) -> ApiResult<Value> {
        let raw = q(raw);
        let known = |k: &str| objects()[0].get(k).is_some();
        let lq = ListQuery::parse(&raw, known)?;
        lq.respond(objects(), "things", "h:1", "/v2.0/things")
    }

    fn ids(raw: &[(&str, &str)]) -> Vec<String> {
        let v = run(raw).unwrap();
        v["things"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_owned()).collect()
    }

    #[test]
    fn filters_fields_and_validation() {
        assert_eq!(ids(&[("name", "x"), ("name", "Y")]), ["a", "b"], "any of them");
        assert_eq!(ids(&[("up", "False")]), ["b"]);
        assert_eq!(ids(&[("mtu", "9000")]), ["b"]);
        assert_eq!(ids(&[("tenant_id", "q")]), ["c"], "tenant_id is project_id");
        assert_eq!(ids(&[("tags", "t1,t2")]), ["a"]);
        assert_eq!(ids(&[("tags-any", "t1,t2")]), ["a", "b"]);
        assert_eq!(ids(&[("not-tags", "t2")]), ["c"]);
        assert_eq!(ids(&[("not-tags-any", "t1")]), ["b", "c"]);
        assert_eq!(ids(&[("fixed_ips", "ip_address=10.0.0.5")]), ["a"]);
        assert_eq!(ids(&[("fixed_ips", "subnet_id=s2")]), ["b"]);
        assert_eq!(
            ids(&[("fixed_ips", "subnet_id=s2"), ("fixed_ips", "ip_address=10.0.0.15")]),
            Vec::<String>::new(),
            "one fixed IP matches all"
        );
        assert_eq!(ids(&[("fixed_ips", "ip_address_substr=0.0.")]), ["a", "b"]);
        assert_eq!(run(&[("fields", "id"), ("name", "x")]).unwrap()["things"], json!([{"id": "a"}]));
        assert!(run(&[("invalid_filter", "x")]).is_err(), "an attribute it does not have");
        assert!(run(&[("changed_since", "yesterday")]).is_err());
        assert_eq!(ids(&[("up", "maybe")]), Vec::<String>::new(), "no boolean: nothing matches");
    }

    #[test]
    fn sorting_without_case_then_id() {
        assert_eq!(ids(&[("sort_key", "name"), ("sort_dir", "asc")]), ["a", "b", "c"]);
        assert_eq!(ids(&[("sort_key", "name"), ("sort_dir", "desc")]), ["c", "b", "a"]);
        assert_eq!(
            ids(&[("sort_key", "up"), ("sort_key", "mtu"), ("sort_dir", "desc"), ("sort_dir", "asc")]),
            ["c", "a", "b"]
        );
        assert!(run(&[("sort_key", "name"), ("sort_dir", "up")]).is_err());
        assert!(run(&[("sort_key", "name"), ("sort_key", "id"), ("sort_dir", "asc")]).is_err());
        assert!(run(&[("sort_key", "nope")]).is_err());
    }

    #[test]
    fn pages_and_their_links_walk_both_ways() {
        let page = |raw: &[(&str, &str)]| run(raw).unwrap();
        let rels = |v: &Value| -> Vec<String> {
            v["things_links"].as_array().unwrap().iter().map(|l| l["rel"].as_str().unwrap().to_owned()).collect()
        };
        let v = page(&[("limit", "2")]);
        assert_eq!(v["things"].as_array().unwrap().len(), 2);
        assert_eq!(rels(&v), ["next", "previous"]);
        assert_eq!(v["things_links"][0]["href"], "http://h:1/v2.0/things?limit=2&marker=b");
        assert_eq!(ids(&[("limit", "2"), ("marker", "b")]), ["c"]);
        let last = page(&[("limit", "2"), ("marker", "b")]);
        assert_eq!(rels(&last), ["previous"], "a short forward page has no next");
        assert_eq!(last["things_links"][0]["href"], "http://h:1/v2.0/things?limit=2&marker=c&page_reverse=True");
        assert_eq!(ids(&[("limit", "2"), ("marker", "c"), ("page_reverse", "True")]), ["a", "b"]);
        assert_eq!(ids(&[("limit", "2"), ("page_reverse", "true")]), ["b", "c"], "the last page");
        assert_eq!(ids(&[("limit", "1"), ("marker", "c")]), Vec::<String>::new());
        assert_eq!(ids(&[("limit", "0")]), ["a", "b", "c"], "0 is no limit");
        assert!(run(&[("limit", "2"), ("marker", "gone")]).is_err());
        assert!(run(&[("limit", "two")]).is_err());
    }
}
