//! Decoding of the Kubernetes protobuf wire format for the request bodies typed clients send
//! (client-go's clientsets send built-in types as `application/vnd.kubernetes.protobuf`):
//! the `k8s\0` envelope (`runtime.Unknown`) and a schema per type, turned into the same JSON
//! the rest of the server handles. Only the types helm and kubectl send this way are known.

use base64::Engine;
use serde_json::{json, Map, Value};

#[derive(Clone, Copy)]
enum F {
    Str,
    I64,
    Bool,
    Time,
    Msg(&'static [(u32, &'static str, F)]),
    RepStr,
    RepMsg(&'static [(u32, &'static str, F)]),
    MapStr,
    MapBytes,
}

type Schema = &'static [(u32, &'static str, F)];

const OWNER_REF: Schema = &[
    (1, "kind", F::Str),
    (3, "name", F::Str),
    (4, "uid", F::Str),
    (5, "apiVersion", F::Str),
    (6, "controller", F::Bool),
    (7, "blockOwnerDeletion", F::Bool),
];

const OBJECT_META: Schema = &[
    (1, "name", F::Str),
    (2, "generateName", F::Str),
    (3, "namespace", F::Str),
    (5, "uid", F::Str),
    (6, "resourceVersion", F::Str),
    (7, "generation", F::I64),
    (8, "creationTimestamp", F::Time),
    (9, "deletionTimestamp", F::Time),
    (10, "deletionGracePeriodSeconds", F::I64),
    (11, "labels", F::MapStr),
    (12, "annotations", F::MapStr),
    (13, "ownerReferences", F::RepMsg(OWNER_REF)),
    (14, "finalizers", F::RepStr),
];

const SECRET: Schema = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "data", F::MapBytes),
    (3, "type", F::Str),
    (4, "stringData", F::MapStr),
    (5, "immutable", F::Bool),
];

const CONFIG_MAP: Schema = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "data", F::MapStr),
    (3, "binaryData", F::MapBytes),
    (4, "immutable", F::Bool),
];

const NAMESPACE: Schema = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "spec", F::Msg(&[(1, "finalizers", F::RepStr)])),
    (3, "status", F::Msg(&[(1, "phase", F::Str)])),
];

const SERVICE_ACCOUNT: Schema = &[(1, "metadata", F::Msg(OBJECT_META))];

const RESOURCE_ATTRIBUTES: Schema = &[
    (1, "namespace", F::Str),
    (2, "verb", F::Str),
    (3, "group", F::Str),
    (4, "version", F::Str),
    (5, "resource", F::Str),
    (6, "subresource", F::Str),
    (7, "name", F::Str),
];

const SSAR: Schema = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (
        2,
        "spec",
        F::Msg(&[
            (1, "resourceAttributes", F::Msg(RESOURCE_ATTRIBUTES)),
            (
                2,
                "nonResourceAttributes",
                F::Msg(&[(1, "path", F::Str), (2, "verb", F::Str)]),
            ),
        ]),
    ),
];

const SSRR: Schema = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "spec", F::Msg(&[(1, "namespace", F::Str)])),
];

const DELETE_OPTIONS: Schema = &[
    (1, "gracePeriodSeconds", F::I64),
    (
        2,
        "preconditions",
        F::Msg(&[(1, "uid", F::Str), (2, "resourceVersion", F::Str)]),
    ),
    (3, "orphanDependents", F::Bool),
    (4, "propagationPolicy", F::Str),
    (5, "dryRun", F::RepStr),
];

fn schema_for(kind: &str) -> Option<Schema> {
    Some(match kind {
        "Secret" => SECRET,
        "ConfigMap" => CONFIG_MAP,
        "Namespace" => NAMESPACE,
        "ServiceAccount" => SERVICE_ACCOUNT,
        "SelfSubjectAccessReview" => SSAR,
        "SelfSubjectRulesReview" => SSRR,
        "DeleteOptions" => DELETE_OPTIONS,
        _ => return None,
    })
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.b.get(self.i).ok_or("truncated varint")?;
            self.i += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.varint()? as usize;
        let s = self.b.get(self.i..self.i + n).ok_or("truncated field")?;
        self.i += n;
        Ok(s)
    }

    fn skip(&mut self, wire: u64) -> Result<(), String> {
        match wire {
            0 => self.varint().map(|_| ()),
            1 => {
                self.i += 8;
                Ok(())
            }
            2 => self.bytes().map(|_| ()),
            5 => {
                self.i += 4;
                Ok(())
            }
            w => Err(format!("unsupported wire type {w}")),
        }
    }
}

fn utf8(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn map_entry(b: &[u8], bytes_value: bool) -> Result<(String, Value), String> {
    let mut r = Reader { b, i: 0 };
    let (mut k, mut v) = (String::new(), Value::String(String::new()));
    while r.i < b.len() {
        let tag = r.varint()?;
        match (tag >> 3, tag & 7) {
            (1, 2) => k = utf8(r.bytes()?),
            (2, 2) => {
                let raw = r.bytes()?;
                v = if bytes_value {
                    json!(base64::engine::general_purpose::STANDARD.encode(raw))
                } else {
                    json!(utf8(raw))
                };
            }
            (_, w) => r.skip(w)?,
        }
    }
    Ok((k, v))
}

fn decode_msg(b: &[u8], schema: Schema) -> Result<Value, String> {
    let mut r = Reader { b, i: 0 };
    let mut out = Map::new();
    while r.i < b.len() {
        let tag = r.varint()?;
        let (field, wire) = (tag >> 3, tag & 7);
        let Some((_, name, f)) = schema.iter().find(|(n, _, _)| u64::from(*n) == field) else {
            r.skip(wire)?;
            continue;
        };
        let name = name.to_string();
        match *f {
            F::Str => {
                out.insert(name, json!(utf8(r.bytes()?)));
            }
            F::I64 => {
                out.insert(name, json!(r.varint()? as i64));
            }
            F::Bool => {
                out.insert(name, json!(r.varint()? != 0));
            }
            F::Time => {
                let t = decode_msg(r.bytes()?, &[(1, "seconds", F::I64)])?;
                let secs = t["seconds"].as_i64().unwrap_or(0);
                let ts = jiff::Timestamp::from_second(secs).map_err(|e| e.to_string())?;
                out.insert(name, json!(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()));
            }
            F::Msg(s) => {
                out.insert(name, decode_msg(r.bytes()?, s)?);
            }
            F::RepStr => {
                let v = json!(utf8(r.bytes()?));
                out.entry(name)
                    .or_insert_with(|| json!([]))
                    .as_array_mut()
                    .expect("array")
                    .push(v);
            }
            F::RepMsg(s) => {
                let v = decode_msg(r.bytes()?, s)?;
                out.entry(name)
                    .or_insert_with(|| json!([]))
                    .as_array_mut()
                    .expect("array")
                    .push(v);
            }
            F::MapStr | F::MapBytes => {
                let (k, v) = map_entry(r.bytes()?, matches!(f, F::MapBytes))?;
                out.entry(name)
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .expect("object")
                    .insert(k, v);
            }
        }
    }
    Ok(Value::Object(out))
}

/// Decodes a `k8s\0`-framed protobuf body into JSON with `apiVersion` and `kind`.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let inner = body
        .strip_prefix(b"k8s\0")
        .ok_or("protobuf body without the k8s envelope")?;
    let unknown = {
        let mut r = Reader { b: inner, i: 0 };
        let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
        while r.i < inner.len() {
            let tag = r.varint()?;
            match (tag >> 3, tag & 7) {
                (1, 2) => {
                    let tm = decode_msg(
                        r.bytes()?,
                        &[(1, "apiVersion", F::Str), (2, "kind", F::Str)],
                    )?;
                    api_version = tm["apiVersion"].as_str().unwrap_or_default().to_string();
                    kind = tm["kind"].as_str().unwrap_or_default().to_string();
                }
                (2, 2) => raw = r.bytes()?,
                (_, w) => r.skip(w)?,
            }
        }
        (api_version, kind, raw)
    };
    let (api_version, kind, raw) = unknown;
    let schema = schema_for(&kind)
        .ok_or_else(|| format!("protobuf decoding of {kind} is not supported; send JSON"))?;
    let mut v = decode_msg(raw, schema)?;
    v["apiVersion"] = json!(api_version);
    v["kind"] = json!(kind);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(n: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![((n << 3) | 2) as u8, payload.len() as u8];
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn a_protobuf_secret_decodes_to_the_json_shape() {
        let meta = [
            field(1, b"sh.helm.release.v1.r.v1"),
            field(11, &[field(1, b"owner"), field(2, b"helm")].concat()),
        ]
        .concat();
        let secret = [
            field(1, &meta),
            field(2, &[field(1, b"release"), field(2, b"\x01\x02")].concat()),
            field(3, b"helm.sh/release.v1"),
        ]
        .concat();
        let tm = [field(1, b"v1"), field(2, b"Secret")].concat();
        let body = [b"k8s\0".to_vec(), field(1, &tm), field(2, &secret)].concat();
        let v = decode(&body).unwrap();
        assert_eq!(v["kind"], "Secret");
        assert_eq!(v["metadata"]["name"], "sh.helm.release.v1.r.v1");
        assert_eq!(v["metadata"]["labels"]["owner"], "helm");
        assert_eq!(v["data"]["release"], "AQI=");
        assert_eq!(v["type"], "helm.sh/release.v1");
    }
}
