//! The values a format template works on, and how Go prints them (`fmt.Sprint`) and
//! encodes them (`encoding/json`): JSON documents for `inspect`, docker's row contexts
//! (fields plus a `Label` method) for `ps`, `images`, `volume ls` and `network ls`.

use std::collections::BTreeMap;
use std::rc::Rc;

#[derive(Debug, Clone)]
pub enum Value {
    /// Go's invalid value (a map key that is not there): prints `<no value>`.
    Missing,
    /// JSON `null`, a nil interface.
    Nil,
    /// A nil pointer (docker's `.Platform` when the engine names none): prints `<nil>`.
    NilPointer,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A JSON number, kept as written (Go decodes inspect data with `UseNumber`).
    Num(String),
    Str(String),
    List(Rc<Vec<Value>>),
    Map(Rc<BTreeMap<String, Value>>),
    Object(Rc<Object>),
}

/// One of docker's formatter contexts: named fields, maybe a `Label` method, and what a
/// missing field means (an error for rows, `<no value>` for the table header).
#[derive(Debug)]
pub struct Object {
    /// What the object is, for error messages: "container", "image", …
    pub kind: &'static str,
    pub fields: Vec<(&'static str, Value)>,
    pub label: Option<LabelMethod>,
    pub strict: bool,
}

#[derive(Debug)]
pub enum LabelMethod {
    /// A row: the label's value, or "".
    Lookup(BTreeMap<String, String>),
    /// The header: the last dotted part of the key, `-` and `_` as spaces (docker's
    /// `SubHeaderContext.Label`).
    Header,
}

impl Object {
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    pub fn call_label(&self, key: &str) -> Option<String> {
        match self.label.as_ref()? {
            LabelMethod::Lookup(labels) => Some(labels.get(key).cloned().unwrap_or_default()),
            LabelMethod::Header => {
                let last = key.rsplit('.').next().unwrap_or(key);
                Some(last.replace(['-', '_'], " "))
            }
        }
    }

    pub fn field_names(&self) -> String {
        let mut names: Vec<String> = self.fields.iter().map(|(k, _)| format!(".{k}")).collect();
        if self.label.is_some() {
            names.push(".Label \"KEY\"".into());
        }
        names.join(", ")
    }
}

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Num(n.to_string()),
            serde_json::Value::String(s) => Value::Str(s.clone()),
            serde_json::Value::Array(a) => Value::List(Rc::new(a.iter().map(Value::from_json).collect())),
            serde_json::Value::Object(m) => Value::Map(Rc::new(
                m.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect(),
            )),
        }
    }

    /// What kind of value this is, with its article, for error messages ("an int").
    pub fn described(&self) -> String {
        match self {
            Value::Missing => "no value".into(),
            Value::Nil | Value::NilPointer => "null".into(),
            Value::Bool(_) => "a bool".into(),
            Value::Int(_) => "an int".into(),
            Value::Float(_) | Value::Num(_) => "a number".into(),
            Value::Str(_) => "a string".into(),
            Value::List(_) => "a list".into(),
            Value::Map(_) => "a map".into(),
            Value::Object(o) => format!("a {}", o.kind),
        }
    }

    /// Go's truth: false, 0, nil, empty strings, lists and maps are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Missing | Value::Nil | Value::NilPointer => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Num(n) => n.parse::<f64>().is_ok_and(|f| f != 0.0),
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Object(_) => true,
        }
    }

    /// What `{{.X}}` prints: `fmt.Sprint` of the value.
    pub fn print(&self) -> String {
        match self {
            Value::Missing | Value::Nil => "<no value>".into(),
            other => other.sprint(),
        }
    }

    /// `fmt.Sprint` inside a composite value: nil is `<nil>`.
    fn sprint(&self) -> String {
        match self {
            Value::Missing => "<no value>".into(),
            Value::Nil | Value::NilPointer => "<nil>".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => go_float(*f),
            Value::Num(n) => n.clone(),
            Value::Str(s) => s.clone(),
            Value::List(l) => format!("[{}]", l.iter().map(Value::sprint).collect::<Vec<_>>().join(" ")),
            Value::Map(m) => format!(
                "map[{}]",
                m.iter()
                    .map(|(k, v)| format!("{k}:{}", v.sprint()))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Value::Object(o) => format!(
                "{{{}}}",
                o.fields
                    .iter()
                    .map(|(_, v)| v.sprint())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        }
    }

    /// `json`: Go's encoding/json without HTML escaping; maps and objects with sorted keys.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Missing | Value::Nil | Value::NilPointer => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map(J::Number).unwrap_or(J::Null),
            Value::Num(n) => serde_json::from_str(n).unwrap_or(J::Null),
            Value::Str(s) => J::String(s.clone()),
            Value::List(l) => J::Array(l.iter().map(Value::to_json).collect()),
            Value::Map(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
            Value::Object(o) => {
                let sorted: BTreeMap<&str, J> = o.fields.iter().map(|(k, v)| (*k, v.to_json())).collect();
                J::Object(sorted.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }
        }
    }

    /// A number for comparisons, if this is one.
    pub fn number(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Num(n) => n.parse().ok(),
            _ => None,
        }
    }
}

/// Go's `%v` for a float64: integral values without a fraction, else the shortest form.
fn go_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e21 {
        format!("{f:.0}")
    } else {
        f.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_go() {
        let v = Value::from_json(&serde_json::json!({"b": [1, "x", null], "a": {"k": true}}));
        assert_eq!(v.print(), "map[a:map[k:true] b:[1 x <nil>]]");
        assert_eq!(Value::Nil.print(), "<no value>");
        assert_eq!(Value::Float(2.0).print(), "2");
        assert_eq!(v.to_json().to_string(), r#"{"a":{"k":true},"b":[1,"x",null]}"#);
    }

    #[test]
    fn header_label_is_the_last_dotted_part() {
        let o = Object {
            kind: "header",
            fields: vec![],
            label: Some(LabelMethod::Header),
            strict: false,
        };
        assert_eq!(
            o.call_label("com.example.my-label_x").as_deref(),
            Some("my label x")
        );
    }
}
