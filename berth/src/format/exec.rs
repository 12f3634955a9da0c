//! Running a parsed template on a value, with docker's functions (`json`, `split`, `join`,
//! `title`, `lower`, `upper`, `pad`, `truncate`) and Go's builtins (`print`, `printf`,
//! `println`, `len`, `index`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `and`, `or`, `not`).

use std::rc::Rc;

use super::template::{Arg, Branch, Cmd, Node, Pipeline};
use super::value::Value;

/// Every function a template may call; anything else is a parse error, as in Go.
pub const FUNCTIONS: &[&str] = &[
    "json", "split", "join", "title", "lower", "upper", "pad", "truncate", "println", "print", "printf",
    "len", "index", "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not",
];

/// docker's `HeaderFunctions`: in a table header these return their first argument, so
/// the header shows the column names untouched (`pad` and Go's builtins still apply).
const HEADER_IDENTITY: &[&str] = &["json", "split", "join", "title", "lower", "upper", "truncate"];

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Rendering the table header (docker's `HeaderFunctions`).
    pub header: bool,
    /// A key a JSON map does not have is an error (inspect's `missingkey=error`).
    pub missing_key_error: bool,
}

/// What went wrong, as the end of a sentence that starts with the template.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecError(pub String);

type R<T> = Result<T, ExecError>;

fn fail<T>(what: impl Into<String>) -> R<T> {
    Err(ExecError(what.into()))
}

#[derive(PartialEq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

/// Runs `nodes` on `data`, appending to `out` (which keeps what was written before an error).
pub fn execute(nodes: &[Node], data: &Value, opts: Options, out: &mut String) -> R<()> {
    let mut x = Exec {
        opts,
        vars: vec![("$".to_string(), data.clone())],
        out,
    };
    x.walk(nodes, data)?;
    Ok(())
}

struct Exec<'o> {
    opts: Options,
    vars: Vec<(String, Value)>,
    out: &'o mut String,
}

impl Exec<'_> {
    fn walk(&mut self, nodes: &[Node], dot: &Value) -> R<Flow> {
        for node in nodes {
            let flow = match node {
                Node::Text(t) => {
                    self.out.push_str(t);
                    Flow::Normal
                }
                Node::Action(p) => {
                    let v = self.pipeline(p, dot)?;
                    if p.decl.is_empty() {
                        self.out.push_str(&v.print());
                    } else {
                        self.declare(&p.decl[0], v);
                    }
                    Flow::Normal
                }
                Node::If(b) => self.scoped(|x| {
                    let v = x.declaring_pipeline(&b.pipe, dot)?;
                    x.walk(if v.truthy() { &b.body } else { &b.otherwise }, dot)
                })?,
                Node::With(b) => self.scoped(|x| {
                    let v = x.declaring_pipeline(&b.pipe, dot)?;
                    if v.truthy() {
                        x.walk(&b.body, &v)
                    } else {
                        x.walk(&b.otherwise, dot)
                    }
                })?,
                Node::Range(b) => self.scoped(|x| x.range(b, dot))?,
                Node::Break => Flow::Break,
                Node::Continue => Flow::Continue,
            };
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    /// Variables declared inside a control structure end with it.
    fn scoped(&mut self, f: impl FnOnce(&mut Self) -> R<Flow>) -> R<Flow> {
        let mark = self.vars.len();
        let r = f(self);
        self.vars.truncate(mark);
        r
    }

    fn declare(&mut self, name: &str, v: Value) {
        self.vars.push((name.to_string(), v));
    }

    fn declaring_pipeline(&mut self, p: &Pipeline, dot: &Value) -> R<Value> {
        let v = self.pipeline(p, dot)?;
        if let Some(name) = p.decl.first() {
            self.declare(name, v.clone());
        }
        Ok(v)
    }

    fn range(&mut self, b: &Branch, dot: &Value) -> R<Flow> {
        let v = self.pipeline(&b.pipe, dot)?;
        let items: Vec<(Value, Value)> = match &v {
            Value::List(l) => l
                .iter()
                .enumerate()
                .map(|(i, e)| (Value::Int(i as i64), e.clone()))
                .collect(),
            Value::Map(m) => m.iter().map(|(k, e)| (Value::str(k), e.clone())).collect(),
            Value::Int(n) => (0..*n).map(|i| (Value::Int(i), Value::Int(i))).collect(),
            Value::Missing | Value::Nil | Value::NilPointer => Vec::new(),
            other => {
                return fail(format!(
                    "ranges over {}, which is not a list or a map",
                    other.described()
                ))
            }
        };
        if items.is_empty() {
            return self.walk(&b.otherwise, dot);
        }
        let mark = self.vars.len();
        for (key, elem) in items {
            self.vars.truncate(mark);
            match b.pipe.decl.as_slice() {
                [] => {}
                [v] => self.declare(v, elem.clone()),
                [k, v, ..] => {
                    self.declare(k, key);
                    self.declare(v, elem.clone());
                }
            }
            if self.walk(&b.body, &elem)? == Flow::Break {
                break;
            }
        }
        Ok(Flow::Normal)
    }

    fn pipeline(&mut self, p: &Pipeline, dot: &Value) -> R<Value> {
        let mut piped = None;
        for c in &p.cmds {
            piped = Some(self.command(c, dot, piped)?);
        }
        Ok(piped.unwrap_or(Value::Missing))
    }

    fn command(&mut self, c: &Cmd, dot: &Value, piped: Option<Value>) -> R<Value> {
        let rest = |x: &mut Self| -> R<Vec<Value>> {
            let mut args = c.args[1..].iter().map(|a| x.arg(a, dot)).collect::<R<Vec<_>>>()?;
            args.extend(piped.clone());
            Ok(args)
        };
        match &c.args[0] {
            Arg::Func(name) => {
                let args = rest(self)?;
                self.call(name, args)
            }
            // `.Label "key"`: a method call on the object that holds it.
            Arg::Field(path) if c.args.len() > 1 || piped.is_some() => {
                let args = rest(self)?;
                let recv = self.path(dot.clone(), &path[..path.len() - 1])?;
                self.field(&recv, &path[path.len() - 1], &args)
            }
            Arg::Var(name, path) if !path.is_empty() && (c.args.len() > 1 || piped.is_some()) => {
                let args = rest(self)?;
                let recv = self.path(self.var(name)?, &path[..path.len() - 1])?;
                self.field(&recv, &path[path.len() - 1], &args)
            }
            first => {
                if c.args.len() > 1 || piped.is_some() {
                    return fail("gives arguments to a value that is not a function — put a function first, e.g. {{upper .Names}}");
                }
                self.arg(first, dot)
            }
        }
    }

    fn arg(&mut self, a: &Arg, dot: &Value) -> R<Value> {
        Ok(match a {
            Arg::Dot => dot.clone(),
            Arg::Field(path) => self.path(dot.clone(), path)?,
            Arg::Var(name, path) => self.path(self.var(name)?, path)?,
            Arg::Sub(p, path) => {
                let v = self.pipeline(p, dot)?;
                self.path(v, path)?
            }
            Arg::Func(name) => self.call(name, Vec::new())?,
            Arg::Str(s) => Value::str(s),
            Arg::Int(n) => Value::Int(*n),
            Arg::Float(f) => Value::Float(*f),
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Nil => Value::Nil,
        })
    }

    fn var(&self, name: &str) -> R<Value> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => fail(format!(
                "uses the variable {name} before declaring it — write {{{{{name} := .Field}}}} first"
            )),
        }
    }

    fn path(&self, mut v: Value, path: &[String]) -> R<Value> {
        for name in path {
            v = self.field(&v, name, &[])?;
        }
        Ok(v)
    }

    fn field(&self, recv: &Value, name: &str, args: &[Value]) -> R<Value> {
        let not_a_method = || {
            fail(format!(
                "gives arguments to .{name}, which is a field, not a method"
            ))
        };
        match recv {
            Value::Object(o) => {
                if name == "Label" && o.label.is_some() {
                    return match args {
                        [Value::Str(key)] => Ok(Value::Str(o.call_label(key).unwrap_or_default())),
                        _ => fail("calls .Label without one label name — write {{.Label \"com.example.key\"}}"),
                    };
                }
                match o.field(name) {
                    Some(_) if !args.is_empty() => not_a_method(),
                    Some(v) => Ok(v.clone()),
                    None if o.strict => fail(format!(
                        "asks for .{name}, but a {} has no such field — use one of {}",
                        o.kind,
                        o.field_names()
                    )),
                    None => Ok(Value::Missing),
                }
            }
            Value::Map(m) => match m.get(name) {
                Some(_) if !args.is_empty() => not_a_method(),
                Some(v) => Ok(v.clone()),
                None if self.opts.missing_key_error => fail(format!(
                    "asks for .{name}, which is not there — see the plain output (without --format) for the fields"
                )),
                None => Ok(Value::Missing),
            },
            Value::Missing if !self.opts.missing_key_error => Ok(Value::Missing),
            other => fail(format!(
                "asks for .{name} of {}, which has no fields",
                other.described()
            )),
        }
    }

    fn call(&self, name: &str, args: Vec<Value>) -> R<Value> {
        let arity = |n: usize| -> R<()> {
            if args.len() != n {
                return fail(format!(
                    "calls {name} with {} argument(s) where it takes {n}, e.g. {}",
                    args.len(),
                    example(name)
                ));
            }
            Ok(())
        };
        if self.opts.header && HEADER_IDENTITY.contains(&name) {
            arity(if matches!(name, "split" | "join" | "truncate") {
                2
            } else {
                1
            })?;
            string(name, &args[0])?;
            return Ok(args[0].clone());
        }
        match name {
            "json" => {
                arity(1)?;
                let mut text = args[0].to_json().to_string();
                // docker's contexts marshal themselves with json.Marshal, which escapes
                // HTML characters (`"Ports":"0.0.0.0:80-\u003e80/tcp"`); the json
                // function itself does not. Go always escapes U+2028 and U+2029.
                if matches!(args[0], Value::Object(_)) {
                    text = text
                        .replace('<', "\\u003c")
                        .replace('>', "\\u003e")
                        .replace('&', "\\u0026");
                }
                Ok(Value::Str(
                    text.replace('\u{2028}', "\\u2028").replace('\u{2029}', "\\u2029"),
                ))
            }
            "split" => {
                arity(2)?;
                let (s, sep) = (string(name, &args[0])?, string(name, &args[1])?);
                let parts: Vec<Value> = if sep.is_empty() {
                    s.chars().map(|c| Value::Str(c.to_string())).collect()
                } else {
                    s.split(sep).map(Value::str).collect()
                };
                Ok(Value::List(Rc::new(parts)))
            }
            "join" => {
                arity(2)?;
                let sep = string(name, &args[1])?;
                let items = match &args[0] {
                    Value::List(l) => l
                        .iter()
                        .map(|v| match v {
                            Value::Str(s) => Ok(s.clone()),
                            _ => fail("joins a list that holds more than strings"),
                        })
                        .collect::<R<Vec<_>>>()?,
                    other => {
                        return fail(format!(
                            "joins {}, but join takes a list of strings — split it first, e.g. {{{{join (split .Names \",\") \" \"}}}}",
                            other.described()
                        ))
                    }
                };
                Ok(Value::Str(items.join(sep)))
            }
            "title" => {
                arity(1)?;
                Ok(Value::Str(title(string(name, &args[0])?)))
            }
            "lower" => {
                arity(1)?;
                Ok(Value::Str(string(name, &args[0])?.to_lowercase()))
            }
            "upper" => {
                arity(1)?;
                Ok(Value::Str(string(name, &args[0])?.to_uppercase()))
            }
            "pad" => {
                arity(3)?;
                let s = string(name, &args[0])?;
                let (pre, post) = (int(name, &args[1])?, int(name, &args[2])?);
                if s.is_empty() {
                    return Ok(Value::str(""));
                }
                Ok(Value::Str(format!(
                    "{}{s}{}",
                    " ".repeat(pre.max(0) as usize),
                    " ".repeat(post.max(0) as usize)
                )))
            }
            "truncate" => {
                arity(2)?;
                let s = string(name, &args[0])?;
                let n = int(name, &args[1])?.max(0) as usize;
                // docker cuts bytes; a cut inside a character backs off to its start.
                let mut end = n.min(s.len());
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                Ok(Value::str(&s[..end]))
            }
            "print" => {
                let mut s = String::new();
                for (i, a) in args.iter().enumerate() {
                    let is_str = |v: &Value| matches!(v, Value::Str(_));
                    if i > 0 && !is_str(a) && !is_str(&args[i - 1]) {
                        s.push(' ');
                    }
                    s.push_str(&operand(a));
                }
                Ok(Value::Str(s))
            }
            "println" => {
                let parts: Vec<String> = args.iter().map(operand).collect();
                Ok(Value::Str(format!("{}\n", parts.join(" "))))
            }
            "printf" => {
                let Some((fmt, rest)) = args.split_first() else {
                    return fail("calls printf without a format, e.g. {{printf \"%s\" .Names}}");
                };
                Ok(Value::Str(printf(string(name, fmt)?, rest)?))
            }
            "len" => {
                arity(1)?;
                Ok(Value::Int(match &args[0] {
                    Value::Str(s) => s.len(),
                    Value::List(l) => l.len(),
                    Value::Map(m) => m.len(),
                    other => return fail(format!("takes len of {}, which has no length", other.described())),
                } as i64))
            }
            "index" => {
                let Some((first, keys)) = args.split_first() else {
                    return fail("calls index without a list or map, e.g. {{index .Names 0}}");
                };
                let mut v = first.clone();
                for k in keys {
                    v = match (&v, k) {
                        (Value::List(l), k) => {
                            let i = int(name, k)?;
                            match usize::try_from(i).ok().and_then(|i| l.get(i)) {
                                Some(e) => e.clone(),
                                None => {
                                    return fail(format!(
                                        "indexes a list of {} with {i}, which is out of range",
                                        l.len()
                                    ))
                                }
                            }
                        }
                        (Value::Map(m), Value::Str(k)) => m.get(k).cloned().unwrap_or(Value::Nil),
                        (other, _) => {
                            return fail(format!(
                                "indexes {}, which is not a list or a map",
                                other.described()
                            ))
                        }
                    };
                }
                Ok(v)
            }
            "eq" | "ne" => {
                if args.len() < 2 {
                    return fail(format!(
                        "calls {name} with fewer than 2 values, e.g. {{{{if {name} .State \"running\"}}}}"
                    ));
                }
                let mut any = false;
                for b in &args[1..] {
                    any |= equal(&args[0], b)?;
                }
                Ok(Value::Bool(if name == "eq" { any } else { !any }))
            }
            "lt" | "le" | "gt" | "ge" => {
                arity(2)?;
                let ord = order(&args[0], &args[1])?;
                use std::cmp::Ordering::*;
                Ok(Value::Bool(match name {
                    "lt" => ord == Less,
                    "le" => ord != Greater,
                    "gt" => ord == Greater,
                    _ => ord != Less,
                }))
            }
            "and" | "or" => {
                if args.is_empty() {
                    return fail(format!("calls {name} without values"));
                }
                let want = name == "or";
                let hit = args.iter().find(|a| a.truthy() == want);
                Ok(hit.unwrap_or(&args[args.len() - 1]).clone())
            }
            "not" => {
                arity(1)?;
                Ok(Value::Bool(!args[0].truthy()))
            }
            other => fail(format!("calls {other}, which does not exist")),
        }
    }
}

fn example(name: &str) -> &'static str {
    match name {
        "truncate" => "{{truncate .Image 5}}",
        "pad" => "{{pad .Names 1 2}}",
        "join" => "{{join (split .Names \",\") \" \"}}",
        "split" => "{{split .Names \",\"}}",
        "index" => "{{index .Names 0}}",
        _ => "{{upper .Names}}",
    }
}

fn string<'v>(func: &str, v: &'v Value) -> R<&'v str> {
    match v {
        Value::Str(s) => Ok(s),
        other => fail(format!(
            "passes {} to {func}, which takes a string, e.g. {}",
            other.described(),
            example(func)
        )),
    }
}

fn int(func: &str, v: &Value) -> R<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Num(n) => n
            .parse()
            .or_else(|_| fail(format!("passes {n} to {func}, which takes a whole number"))),
        other => fail(format!(
            "passes {} to {func} where it takes a number, e.g. {}",
            other.described(),
            example(func)
        )),
    }
}

/// An operand of print/println/printf (`%v`): nil interfaces print `<nil>`.
fn operand(v: &Value) -> String {
    match v {
        Value::Missing | Value::Nil => "<nil>".into(),
        other => other.print(),
    }
}

/// Go's `strings.Title`: the first letter of each word upper-cased.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else {
            c.is_whitespace()
        };
    }
    out
}

fn printf(fmt: &str, args: &[Value]) -> R<String> {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let verb = chars.next();
        if verb == Some('%') {
            out.push('%');
            continue;
        }
        let Some(a) = args.next() else {
            out.push_str(&format!("%!{}(MISSING)", verb.unwrap_or(' ')));
            continue;
        };
        match verb {
            Some('s') | Some('v') | Some('d') => out.push_str(&operand(a)),
            Some('q') => out.push_str(&serde_json::Value::String(operand(a)).to_string()),
            other => {
                return fail(format!(
                    "uses %{} in printf, which berth does not support — use %s, %v, %d or %q",
                    other.unwrap_or(' ')
                ))
            }
        }
    }
    Ok(out)
}

fn equal(a: &Value, b: &Value) -> R<bool> {
    if let (Some(x), Some(y)) = (a.number(), b.number()) {
        return Ok(x == y);
    }
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Ok(x == y),
        (Value::Bool(x), Value::Bool(y)) => Ok(x == y),
        (
            Value::Nil | Value::NilPointer | Value::Missing,
            Value::Nil | Value::NilPointer | Value::Missing,
        ) => Ok(true),
        (Value::Nil | Value::NilPointer | Value::Missing, _)
        | (_, Value::Nil | Value::NilPointer | Value::Missing) => Ok(false),
        _ => fail(format!(
            "compares {} with {}, which cannot be compared",
            a.described(),
            b.described()
        )),
    }
}

fn order(a: &Value, b: &Value) -> R<std::cmp::Ordering> {
    if let (Some(x), Some(y)) = (a.number(), b.number()) {
        return Ok(x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal));
    }
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Ok(x.cmp(y)),
        _ => fail(format!(
            "orders {} against {}, which cannot be ordered",
            a.described(),
            b.described()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::template::parse;
    use crate::format::value::{LabelMethod, Object};

    fn run(src: &str, data: &Value, opts: Options) -> Result<String, String> {
        let nodes = parse(src).map_err(|e| e.0)?;
        let mut out = String::new();
        execute(&nodes, data, opts, &mut out).map_err(|e| e.0)?;
        Ok(out)
    }

    fn row() -> Value {
        Value::Object(Rc::new(Object {
            kind: "container",
            fields: vec![
                ("Names", Value::str("web-frontend")),
                ("Image", Value::str("127.0.0.1:5000/library/busybox:latest")),
                ("Status", Value::str("Up 2 seconds")),
                ("Networks", Value::str("bridge,back")),
            ],
            label: Some(LabelMethod::Lookup(
                [("com.x.tier".to_string(), "db".to_string())].into(),
            )),
            strict: true,
        }))
    }

    fn json(v: serde_json::Value) -> Value {
        Value::from_json(&v)
    }

    #[test]
    fn golden_rows() {
        let cases: &[(&str, &str)] = &[
            ("{{.Names}}", "web-frontend"),
            ("{{truncate .Image 5}}", "127.0"),
            ("{{truncate .Names 50}}", "web-frontend"),
            (
                "{{upper .Names}}|{{lower \"AbC\"}}|{{title \"hello wide-world\"}}",
                "WEB-FRONTEND|abc|Hello Wide-World",
            ),
            ("{{.Names | upper}}", "WEB-FRONTEND"),
            ("{{join (split .Networks \",\") \" + \"}}", "bridge + back"),
            ("[{{pad .Names 1 2}}]", "[ web-frontend  ]"),
            ("{{json .Names}}", "\"web-frontend\""),
            ("{{json \"a<b>&\"}}", "\"a<b>&\""),
            ("{{.Label \"com.x.tier\"}}/{{.Label \"nope\"}}", "db/"),
            ("{{println .Names}}", "web-frontend\n"),
            ("{{print 1 2 \"a\" \"b\" 3}}", "1 2ab3"),
            ("{{printf \"%s=%d\" .Names 3}}", "web-frontend=3"),
            ("{{if eq .Status \"Up 2 seconds\"}}up{{else}}down{{end}}", "up"),
            (
                "{{if ne .Names \"web-frontend\"}}a{{else if .Status}}b{{else}}c{{end}}",
                "b",
            ),
            ("{{range split .Networks \",\"}}<{{.}}>{{end}}", "<bridge><back>"),
            (
                "{{range $i, $n := split .Networks \",\"}}{{$i}}={{$n}} {{end}}",
                "0=bridge 1=back ",
            ),
            (
                "{{$n := .Names}}{{with .Status}}{{$n}}: {{.}}{{end}}",
                "web-frontend: Up 2 seconds",
            ),
            ("{{len .Names}} {{index (split .Networks \",\") 1}}", "12 back"),
            ("a {{- \" b \" -}} c", "a b c"),
            ("{{/* nothing */}}x", "x"),
            (
                "{{range split .Networks \",\"}}{{if eq . \"back\"}}{{break}}{{end}}{{.}}{{end}}",
                "bridge",
            ),
        ];
        for (src, want) in cases {
            assert_eq!(
                run(src, &row(), Options::default()).as_deref(),
                Ok(*want),
                "{src}"
            );
        }
    }

    #[test]
    fn golden_inspect() {
        let v = json(serde_json::json!({
            "Id": "sha256:abc",
            "Size": 1234,
            "State": {"Status": "running", "Pid": 0},
            "Config": {"Cmd": ["sh", "-c"], "Image": "busybox", "Labels": {"a": "1", "b": "2"}, "Env": null},
            "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}}
        }));
        let opts = Options {
            missing_key_error: true,
            ..Default::default()
        };
        let cases: &[(&str, &str)] = &[
            ("{{.Config.Image}}", "busybox"),
            ("{{.Id}} {{.Size}}", "sha256:abc 1234"),
            ("{{json .Config.Cmd}}", "[\"sh\",\"-c\"]"),
            ("{{.Config.Cmd}}", "[sh -c]"),
            ("{{.Config.Labels}}", "map[a:1 b:2]"),
            ("{{.Config.Env}}", "<no value>"),
            ("{{join .Config.Cmd \" \"}}", "sh -c"),
            (
                "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}",
                "a=1;b=2;",
            ),
            (
                "{{range $p, $c := .NetworkSettings.Ports}}{{$p}} -> {{(index $c 0).HostPort}}{{end}}",
                "80/tcp -> 8080",
            ),
            ("{{if .State.Pid}}pid{{else}}no pid{{end}}", "no pid"),
            ("{{if gt .Size 1000}}big{{end}}", "big"),
            ("{{range .Config.Env}}x{{else}}empty{{end}}", "empty"),
            ("{{json .State}}", "{\"Pid\":0,\"Status\":\"running\"}"),
        ];
        for (src, want) in cases {
            assert_eq!(run(src, &v, opts).as_deref(), Ok(*want), "{src}");
        }
        assert!(run("{{.Nope}}", &v, opts).unwrap_err().contains("asks for .Nope"));
        assert!(run("{{.Config.Nope.X}}", &v, opts).is_err());
    }

    #[test]
    fn header_functions_keep_column_names() {
        let header = Value::Object(Rc::new(Object {
            kind: "header",
            fields: vec![("Names", Value::str("NAMES")), ("Image", Value::str("IMAGE"))],
            label: Some(LabelMethod::Header),
            strict: false,
        }));
        let opts = Options {
            header: true,
            ..Default::default()
        };
        let src = "{{upper .Names}}\t{{truncate .Image 2}}\t{{join (split .Names \",\") \"-\"}}\t{{.Label \"com.x.my_tier\"}}\t{{pad .Names 1 1}}\t{{.Nope}}";
        assert_eq!(
            run(src, &header, opts).as_deref(),
            Ok("NAMES\tIMAGE\tNAMES\tmy tier\t NAMES \t<no value>")
        );
    }

    #[test]
    fn runtime_errors_say_what_to_do() {
        let e = run("{{.Nope}}", &row(), Options::default()).unwrap_err();
        assert!(
            e.contains("a container has no such field — use one of .Names, .Image"),
            "{e}"
        );
        let e = run("{{.Image | truncate 5}}", &row(), Options::default()).unwrap_err();
        assert!(
            e.contains("passes an int to truncate, which takes a string"),
            "{e}"
        );
        let e = run("{{join .Names \",\"}}", &row(), Options::default()).unwrap_err();
        assert!(e.contains("join takes a list of strings"), "{e}");
        let e = run("{{.Names \"x\"}}", &row(), Options::default()).unwrap_err();
        assert!(e.contains("not a method"), "{e}");
        let e = run("{{upper}}", &row(), Options::default()).unwrap_err();
        assert!(e.contains("0 argument(s) where it takes 1"), "{e}");
        let e = run("{{$x}}", &row(), Options::default()).unwrap_err();
        assert!(e.contains("before declaring it"), "{e}");
    }
}
