//! Container names: docker's rules for given names, and a random `adjective_noun` otherwise.

use rand::seq::IndexedRandom;

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "clever", "eager", "fervent", "gentle", "happy", "jolly", "keen", "lucid", "mystic",
    "nifty", "quirky", "relaxed", "sharp", "sleepy", "stoic", "tender", "vibrant", "wizardly", "zealous",
];
const NOUNS: &[&str] = &[
    "anchor", "beacon", "buoy", "cargo", "compass", "dock", "ferry", "harbor", "keel", "lantern", "mast",
    "pier", "quay", "rudder", "sail", "schooner", "skiff", "tide", "wharf", "yawl",
];

pub fn random() -> String {
    let mut rng = rand::rng();
    format!(
        "{}_{}",
        ADJECTIVES.choose(&mut rng).expect("non-empty"),
        NOUNS.choose(&mut rng).expect("non-empty")
    )
}

/// docker: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn is_valid(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

#[cfg(test)]
mod tests {
    #[test]
    fn names() {
        assert!(super::is_valid("my-container"));
        assert!(super::is_valid("a1"));
        assert!(!super::is_valid("a"));
        assert!(!super::is_valid("-x"));
        assert!(!super::is_valid("has space"));
        assert!(super::is_valid(&super::random()));
    }
}
