//! `contracts/asyncapi.yaml`: the AsyncAPI document of every topic
//! (`contracts::asyncapi::document`) written as YAML. `pizza-node asyncapi >
//! contracts/asyncapi.yaml` writes it; a test fails when the committed file
//! is not what the code makes.

use contracts::topics::Topics;

/// The document for the default prefix, as YAML.
pub fn yaml() -> Result<String, serde_norway::Error> {
    serde_norway::to_string(&contracts::asyncapi::document(&Topics::default()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_committed_document_is_the_generated_one() {
        let committed = include_str!("../../contracts/asyncapi.yaml");
        let generated = super::yaml().expect("the document writes as YAML");
        assert!(
            committed == generated,
            "contracts/asyncapi.yaml is not what the code generates; write it again with\n  \
             cargo run -p node --bin pizza-node -- asyncapi > contracts/asyncapi.yaml"
        );
    }
}
