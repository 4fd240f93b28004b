//! The object store a `state.checkpoints.dir` URL names, configured from
//! Flink's options or the environment:
//!
//! - `s3://bucket/path` (also `s3a://`): `s3.endpoint`, `s3.access-key`,
//!   `s3.secret-key`, `s3.region`, `s3.path.style.access`, else the `AWS_*`
//!   environment;
//! - `gs://bucket/path`: Google Cloud Storage, credentials from the
//!   environment (`GOOGLE_APPLICATION_CREDENTIALS`, `GOOGLE_SERVICE_ACCOUNT`,
//!   or the metadata server of a VM or pod);
//! - `abfss://container@account.dfs.core.windows.net/path` (Flink's form, also
//!   `abfs://`, `wasbs://`) and `az://container/path`: Azure Blob Storage,
//!   the key from Flink's `fs.azure.account.key.<account>.dfs.core.windows.net`
//!   (or `.blob.core.windows.net`), else the `AZURE_STORAGE_*` environment
//!   (`AZURE_STORAGE_USE_EMULATOR=true` reaches Azurite).

use std::collections::BTreeMap;
use std::sync::Arc;

use object_store::path::Path;
use object_store::ObjectStore;

use crate::{EngineError, Result};

fn err(url: &str, what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::State(format!("checkpoint storage '{url}': {what}: {e}"))
}

/// The store `url` names and the path under which its checkpoints go.
pub fn open_store(
    url: &str,
    settings: &BTreeMap<String, String>,
) -> Result<(Arc<dyn ObjectStore>, Path)> {
    let parsed = url::Url::parse(url).map_err(|e| err(url, "not a URL", e))?;
    let prefix = Path::from_url_path(parsed.path()).map_err(|e| err(url, "bad path", e))?;
    let store: Arc<dyn ObjectStore> = match parsed.scheme() {
        "s3" | "s3a" => {
            let bucket = parsed
                .host_str()
                .ok_or_else(|| err(url, "no bucket", "write s3://bucket/path"))?;
            let mut builder =
                object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
            for (k, v) in s3_options(settings) {
                let key = k
                    .parse::<object_store::aws::AmazonS3ConfigKey>()
                    .map_err(|e| err(url, "option", e))?;
                builder = builder.with_config(key, v);
            }
            Arc::new(builder.build().map_err(|e| err(url, "cannot open", e))?)
        }
        "gs" => {
            let bucket = parsed
                .host_str()
                .ok_or_else(|| err(url, "no bucket", "write gs://bucket/path"))?;
            let builder =
                object_store::gcp::GoogleCloudStorageBuilder::from_env().with_bucket_name(bucket);
            Arc::new(builder.build().map_err(|e| err(url, "cannot open", e))?)
        }
        "abfs" | "abfss" | "wasb" | "wasbs" | "az" | "azure" => {
            let mut builder = object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(azure_url(&parsed));
            if let Some(key) = azure_key(&parsed, settings) {
                builder = builder.with_access_key(key);
            }
            Arc::new(builder.build().map_err(|e| err(url, "cannot open", e))?)
        }
        other => {
            return Err(err(
                url,
                "unsupported scheme",
                format!(
                    "'{other}://'; use s3://bucket/path, gs://bucket/path, abfss://container@account.dfs.core.windows.net/path, az://container/path, or a local directory (or file:///path)"
                ),
            ))
        }
    };
    Ok((store, prefix))
}

/// The URL `object_store` parses for Azure: Flink's `wasb[s]://` is the
/// blob endpoint's `abfs[s]://` form.
fn azure_url(parsed: &url::Url) -> String {
    let text = parsed.as_str();
    match parsed.scheme() {
        "wasb" | "wasbs" => format!(
            "abfss://{}",
            text.split_once("://").map_or("", |(_, rest)| rest)
        ),
        _ => text.to_string(),
    }
}

/// The account key Flink's `fs.azure.account.key.<account>.<endpoint>`
/// gives for the account of `parsed` (`container@account.<endpoint>`).
fn azure_key(parsed: &url::Url, settings: &BTreeMap<String, String>) -> Option<String> {
    let host = parsed.host_str()?;
    let account = host.split('.').next()?;
    ["dfs.core.windows.net", "blob.core.windows.net"]
        .iter()
        .find_map(|endpoint| settings.get(&format!("fs.azure.account.key.{account}.{endpoint}")))
        .cloned()
}

/// Flink's S3 options (`s3.endpoint`, `s3.access-key`, `s3.secret-key`,
/// `s3.region`, `s3.path.style.access`) as `object_store`'s.
fn s3_options(settings: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut out = vec![];
    for (flink, ours) in [
        ("s3.endpoint", "aws_endpoint"),
        ("s3.access-key", "aws_access_key_id"),
        ("s3.secret-key", "aws_secret_access_key"),
        ("s3.region", "aws_region"),
    ] {
        if let Some(v) = settings.get(flink) {
            out.push((ours.to_string(), v.clone()));
        }
    }
    if let Some(endpoint) = settings.get("s3.endpoint") {
        if endpoint.starts_with("http://") {
            out.push(("aws_allow_http".into(), "true".into()));
        }
    }
    let path_style = settings
        .get("s3.path.style.access")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    out.push((
        "aws_virtual_hosted_style_request".into(),
        (!path_style).to_string(),
    ));
    if !out.iter().any(|(k, _)| k == "aws_region") {
        out.push(("aws_region".into(), "us-east-1".into()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flink_s3_options_map_onto_object_stores() {
        let settings: BTreeMap<String, String> = [
            ("s3.endpoint", "http://127.0.0.1:9000"),
            ("s3.access-key", "a"),
            ("s3.secret-key", "s"),
            ("s3.path.style.access", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let o: BTreeMap<String, String> = s3_options(&settings).into_iter().collect();
        assert_eq!(o["aws_endpoint"], "http://127.0.0.1:9000");
        assert_eq!(o["aws_allow_http"], "true");
        assert_eq!(o["aws_virtual_hosted_style_request"], "false");
        assert_eq!(o["aws_access_key_id"], "a");
        assert_eq!(o["aws_region"], "us-east-1");
    }

    #[test]
    fn azure_urls_in_flink_s_form_and_keys_from_flink_s_option() {
        let settings: BTreeMap<String, String> = [(
            "fs.azure.account.key.acct.dfs.core.windows.net".to_string(),
            "a2V5".to_string(),
        )]
        .into_iter()
        .collect();
        let url = url::Url::parse("abfss://chk@acct.dfs.core.windows.net/jobs").expect("url");
        assert_eq!(azure_key(&url, &settings).as_deref(), Some("a2V5"));
        let wasb = url::Url::parse("wasbs://chk@acct.blob.core.windows.net/jobs").expect("url");
        assert_eq!(
            azure_url(&wasb),
            "abfss://chk@acct.blob.core.windows.net/jobs"
        );
        let (_, prefix) = open_store("abfss://chk@acct.dfs.core.windows.net/jobs/a", &settings)
            .expect("an Azure store");
        assert_eq!(prefix.as_ref(), "jobs/a");
    }

    #[test]
    fn other_schemes_are_refused_with_what_to_use() {
        let e = open_store("ftp://b/p", &BTreeMap::new()).expect_err("refused");
        assert!(e.to_string().contains("use s3://bucket/path"), "{e}");
    }
}
