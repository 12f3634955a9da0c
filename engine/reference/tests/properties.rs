//! Property tests: valid references round-trip through every printed form, and no input
//! makes the parser panic.

use berth_reference::ImageRef;
use proptest::prelude::*;

fn component() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,6}(([._]|__|-{1,3})[a-z0-9]{1,6}){0,2}"
}

fn domain() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("localhost".to_string())),
        "[a-z][a-z0-9]{0,8}\\.[a-z]{2,4}".prop_map(Some),
        ("[a-z][a-z0-9]{0,8}\\.[a-z]{2,4}", 1u16..).prop_map(|(h, p)| Some(format!("{h}:{p}"))),
        (1u16..).prop_map(|p| Some(format!("127.0.0.1:{p}"))),
    ]
}

fn tag() -> impl Strategy<Value = Option<String>> {
    prop_oneof![Just(None), "[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}".prop_map(Some)]
}

fn digest() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        "[0-9a-f]{64}".prop_map(|h| Some(format!("sha256:{h}")))
    ]
}

proptest! {
    #[test]
    fn valid_references_round_trip(
        domain in domain(),
        path in prop::collection::vec(component(), 1..4),
        tag in tag(),
        digest in digest(),
    ) {
        // Without a domain, a first part with a '.' would itself be read as a domain
        // (docker's rule), so keep dots out of it.
        let mut path = path;
        if domain.is_none() {
            path[0] = path[0].replace('.', "_");
        }
        let mut s = String::new();
        if let Some(d) = &domain { s.push_str(d); s.push('/'); }
        s.push_str(&path.join("/"));
        if let Some(t) = &tag { s.push(':'); s.push_str(t); }
        if let Some(d) = &digest { s.push('@'); s.push_str(d); }

        let r = ImageRef::parse(&s).unwrap();
        // The parts are what was written, plus docker's defaults.
        let expected_domain = domain.clone().unwrap_or_else(|| "docker.io".into());
        prop_assert_eq!(r.domain(), expected_domain.as_str());
        let joined = path.join("/");
        if domain.is_none() && path.len() == 1 {
            prop_assert_eq!(r.path(), format!("library/{joined}"));
        } else {
            prop_assert_eq!(r.path(), joined.as_str());
        }
        prop_assert_eq!(r.digest().map(|d| d.to_string()), digest.clone());
        match (&tag, &digest) {
            (Some(t), _) => prop_assert_eq!(r.tag(), Some(t.as_str())),
            (None, Some(_)) => prop_assert_eq!(r.tag(), None),
            (None, None) => prop_assert_eq!(r.tag(), Some("latest")),
        }
        // Every printed form parses back to the same reference.
        prop_assert_eq!(&ImageRef::parse(&r.to_string()).unwrap(), &r);
        prop_assert_eq!(&ImageRef::parse(&r.familiar()).unwrap(), &r);
    }

    #[test]
    fn never_panics(s in "\\PC{0,80}") {
        let _ = ImageRef::parse(&s);
    }

    #[test]
    fn upper_case_paths_are_refused(c in component(), up in "[A-Z]{1,3}") {
        let s = format!("docker.io/{c}{up}");
        prop_assert!(ImageRef::parse(&s).is_err());
    }
}
