//! A request for a resource as the handlers see it: the resource type, namespace, name,
//! subresource, query, verb and identity, and its body parsed.

use std::collections::HashMap;

use serde_json::Value;

use super::auth::{Attributes, Identity};
use super::resources::ResourceType;
use crate::store::ApiError;

/// Query parameters; repeated keys (exec's `command`) keep every value.
#[derive(Debug, Default, Clone)]
pub struct Query(HashMap<String, Vec<String>>);

impl Query {
    pub fn parse(q: &str) -> Query {
        let mut m: HashMap<String, Vec<String>> = HashMap::new();
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            m.entry(decode(k)).or_default().push(decode(v));
        }
        Query(m)
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).and_then(|v| v.first()).map(String::as_str)
    }

    pub fn all(&self, k: &str) -> Vec<String> {
        self.0.get(k).cloned().unwrap_or_default()
    }

    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("1" | "true" | "True"))
    }
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A request for a resource, a named object or one of its subresources.
#[derive(Debug, Clone)]
pub struct ResourceRequest {
    pub rt: &'static ResourceType,
    pub namespace: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
    pub query: Query,
    pub verb: &'static str,
    pub identity: Identity,
    pub accept: String,
    pub content_type: String,
}

impl ResourceRequest {
    pub fn attributes(&self) -> Attributes {
        Attributes {
            verb: self.verb.to_string(),
            group: self.rt.group.to_string(),
            resource: self.rt.plural.to_string(),
            subresource: self.subresource.clone().unwrap_or_default(),
            namespace: self.namespace.clone(),
            name: self.name.clone().unwrap_or_default(),
        }
    }

    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }
}

/// Parses a request body as JSON, or YAML for apply patches and YAML content types.
pub fn parse_body(rr: &ResourceRequest, body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(Value::Null);
    }
    if rr.content_type.contains("protobuf") {
        return super::protobuf::decode(body).map_err(|e| {
            ApiError::new(
                415,
                "UnsupportedMediaType",
                format!("decoding the protobuf request body: {e}"),
            )
        });
    }
    if rr.content_type.contains("cbor") {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/apply-patch+yaml (got {})", rr.content_type),
        ));
    }
    if rr.content_type.contains("yaml") {
        return serde_norway::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml ({e})"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode_and_keep_repeated_keys() {
        let q = Query::parse("command=sh&command=-c&command=echo+a%3Db&stdin=true");
        assert_eq!(q.all("command"), vec!["sh", "-c", "echo a=b"]);
        assert!(q.flag("stdin"));
    }

    fn create_pods(content_type: &str) -> ResourceRequest {
        ResourceRequest {
            rt: crate::api::resources::find("", "v1", "pods").unwrap(),
            namespace: "la".into(),
            name: None,
            subresource: None,
            query: Query::default(),
            verb: "create",
            identity: Identity {
                name: "admin".into(),
                token: "t".into(),
                rules: Vec::new(),
            },
            accept: String::new(),
            content_type: content_type.into(),
        }
    }

    #[test]
    fn the_body_is_read_as_its_content_type_says() {
        let json = create_pods("application/json");
        assert_eq!(parse_body(&json, b"").unwrap(), Value::Null);
        assert_eq!(parse_body(&json, br#"{"a":1}"#).unwrap()["a"], 1);
        let yaml = create_pods("application/apply-patch+yaml");
        assert_eq!(parse_body(&yaml, b"a: 1\n").unwrap()["a"], 1);
        let e = parse_body(&create_pods("application/cbor"), b"x").unwrap_err();
        assert_eq!(e.code, 415);
        assert_eq!(parse_body(&json, b"a: 1").unwrap_err().code, 400);
    }
}
