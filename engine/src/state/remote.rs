//! Checkpoints on object storage (`state.checkpoints.dir` = `s3://bucket/path`,
//! `gs://...`, `abfss://...`, through the `object_store` crate): each checkpoint, once written locally
//! (see [`super::checkpoints`]), is uploaded before it counts as complete,
//! and a job whose machine lost its local state restores from there.
//!
//! ```text
//! <prefix>/chk-<id>/<file>          the files a checkpoint added
//! <prefix>/chk-<id>/_manifest       written last, create-only: each file of
//!                                   the checkpoint, the object holding it
//!                                   and its size
//! ```
//!
//! Uploads are incremental: an SST file (immutable under its name in its
//! database) that the previous checkpoint already had is not uploaded again;
//! the manifest points at the object of the checkpoint that uploaded it. A
//! checkpoint without a manifest is incomplete and never read. Restoring
//! downloads the newest manifest's files that the local copy lacks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path as LocalPath;
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::message::CheckpointId;
use crate::{EngineError, Result};

const MANIFEST: &str = "_manifest";

/// What a checkpoint on object storage holds: each of its files (relative
/// to its local directory) with the object holding it and its size.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Manifest {
    /// The checkpoint's id.
    pub id: CheckpointId,
    /// File -> (object key under the prefix, size).
    pub files: BTreeMap<String, (String, u64)>,
}

/// A job's checkpoints in an object store.
#[derive(Clone)]
pub struct RemoteCheckpoints {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    url: String,
}

impl std::fmt::Debug for RemoteCheckpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteCheckpoints({})", self.url)
    }
}

fn err(url: &str, what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::State(format!("checkpoint storage '{url}': {what}: {e}"))
}

impl RemoteCheckpoints {
    /// The store at `url` (see [`super::object_stores`]), its credentials
    /// and endpoint from the job's settings or the environment.
    pub fn open(url: &str, settings: &BTreeMap<String, String>) -> Result<Self> {
        let (store, prefix) = super::object_stores::open_store(url, settings)?;
        Ok(Self {
            store,
            prefix,
            url: url.to_string(),
        })
    }

    /// Checkpoints under `prefix` of `store` (`url` names it in messages).
    pub fn with_store(store: Arc<dyn ObjectStore>, prefix: &str, url: &str) -> Self {
        Self {
            store,
            prefix: Path::from(prefix),
            url: url.to_string(),
        }
    }

    /// The store's URL, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The checkpoints under `<prefix>/<name>` of the same store.
    pub fn child(&self, name: &str) -> Self {
        Self {
            store: self.store.clone(),
            prefix: self.key(name),
            url: format!("{}/{name}", self.url.trim_end_matches('/')),
        }
    }

    /// Whether the object `<prefix>/<name>` exists.
    pub async fn exists(&self, name: &str) -> Result<bool> {
        match self.store.head(&self.key(name)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(err(&self.url, &format!("cannot look for {name}"), e)),
        }
    }

    /// Writes the object `<prefix>/<name>`.
    pub async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        self.store
            .put(&self.key(name), PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| err(&self.url, &format!("cannot write {name}"), e))
    }

    /// Every object under the prefix.
    async fn objects(&self) -> Result<Vec<object_store::ObjectMeta>> {
        self.store
            .list(Some(&self.prefix))
            .try_collect()
            .await
            .map_err(|e| err(&self.url, "cannot list", e))
    }

    /// The names of every object under the prefix, relative to it.
    pub async fn names(&self) -> Result<Vec<String>> {
        let objects = self.objects().await?;
        let skip = self.prefix.parts().count();
        Ok(objects
            .iter()
            .map(|o| {
                o.location
                    .parts()
                    .skip(skip)
                    .map(|p| p.as_ref().to_string())
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .collect())
    }

    /// Deletes the objects `<prefix>/<name>` (names as [`Self::names`] gives).
    pub async fn delete(&self, names: &[String]) {
        for name in names {
            if let Err(e) = self.store.delete(&self.key(name)).await {
                tracing::warn!(url = %self.url, object = %name, "cannot delete: {e}");
            }
        }
    }

    /// The manifest of checkpoint `id`, if it is complete here.
    pub async fn manifest(&self, id: CheckpointId) -> Result<Option<Manifest>> {
        Ok(self.manifests().await?.into_iter().find(|m| m.id == id))
    }

    /// `prefix/name...`.
    fn key(&self, name: &str) -> Path {
        name.split('/')
            .fold(self.prefix.clone(), |p, part| p.join(part))
    }

    /// Uploads checkpoint `id`, whose files (relative to `dir`, with their
    /// sizes) are `files`, reusing the objects of `previous` for SST files it
    /// had; then writes its manifest, create-only. Returns the manifest.
    pub async fn upload(
        &self,
        id: CheckpointId,
        dir: &LocalPath,
        files: &BTreeMap<String, u64>,
        previous: Option<&Manifest>,
    ) -> Result<Manifest> {
        let mut manifest = Manifest {
            id,
            files: BTreeMap::new(),
        };
        for (name, size) in files {
            let reused = previous
                .and_then(|p| p.files.get(name))
                .filter(|(_, s)| name.ends_with(".sst") && s == size);
            let key = match reused {
                Some((key, _)) => key.clone(),
                None => {
                    let key = format!("chk-{id}/{name}");
                    let path = dir.join(name);
                    let bytes = tokio::fs::read(&path).await.map_err(|e| {
                        err(&self.url, &format!("cannot read '{}'", path.display()), e)
                    })?;
                    self.store
                        .put(&self.key(&key), PutPayload::from(bytes))
                        .await
                        .map_err(|e| err(&self.url, &format!("cannot upload {key}"), e))?;
                    key
                }
            };
            manifest.files.insert(name.clone(), (key, *size));
        }
        let json = serde_json::to_vec(&manifest)
            .map_err(|e| err(&self.url, "cannot encode a manifest", e))?;
        let at = self.key(&format!("chk-{id}/{MANIFEST}"));
        // Create-only: a second writer of the same checkpoint (a zombie)
        // fails rather than replacing it.
        self.store
            .put_opts(
                &at,
                PutPayload::from(json),
                PutOptions {
                    mode: PutMode::Create,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| {
                err(
                    &self.url,
                    &format!("cannot write the manifest of checkpoint {id}"),
                    e,
                )
            })?;
        Ok(manifest)
    }

    /// The manifests of the complete checkpoints, newest first.
    pub async fn manifests(&self) -> Result<Vec<Manifest>> {
        let objects = self.objects().await?;
        let mut ids: Vec<CheckpointId> = objects
            .iter()
            .filter_map(|o| {
                let mut parts = o.location.parts().collect::<Vec<_>>().into_iter().rev();
                let (file, chk) = (parts.next()?, parts.next()?);
                (file.as_ref() == MANIFEST).then_some(())?;
                chk.as_ref().strip_prefix("chk-")?.parse().ok()
            })
            .collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        let mut out = vec![];
        for id in ids {
            let at = self.key(&format!("chk-{id}/{MANIFEST}"));
            let bytes = self
                .store
                .get(&at)
                .await
                .map_err(|e| {
                    err(
                        &self.url,
                        &format!("cannot read the manifest of checkpoint {id}"),
                        e,
                    )
                })?
                .bytes()
                .await
                .map_err(|e| {
                    err(
                        &self.url,
                        &format!("cannot read the manifest of checkpoint {id}"),
                        e,
                    )
                })?;
            match serde_json::from_slice::<Manifest>(&bytes) {
                Ok(m) => out.push(m),
                Err(e) => {
                    tracing::warn!(checkpoint = id, url = %self.url, "skipping a checkpoint with an unreadable manifest: {e}")
                }
            }
        }
        Ok(out)
    }

    /// Downloads the files of `manifest` into `dir` (its local directory),
    /// keeping those already there with the right size.
    pub async fn download(&self, manifest: &Manifest, dir: &LocalPath) -> Result<()> {
        self.download_where(manifest, dir, &|_| true)
            .await
            .map(|_| ())
    }

    /// As [`Self::download`], of the files `wanted` accepts (by their name
    /// in the checkpoint): the names of the files it left out.
    pub async fn download_where(
        &self,
        manifest: &Manifest,
        dir: &LocalPath,
        wanted: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Vec<String>> {
        let mut left = vec![];
        for (name, (key, size)) in &manifest.files {
            if !wanted(name) {
                left.push(name.clone());
                continue;
            }
            let path = dir.join(name);
            if tokio::fs::metadata(&path)
                .await
                .is_ok_and(|m| m.len() == *size)
            {
                continue;
            }
            let bytes = self
                .store
                .get(&self.key(key))
                .await
                .map_err(|e| err(&self.url, &format!("cannot download {key}"), e))?
                .bytes()
                .await
                .map_err(|e| err(&self.url, &format!("cannot download {key}"), e))?;
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent).await.map_err(|e| {
                    err(
                        &self.url,
                        &format!("cannot create '{}'", parent.display()),
                        e,
                    )
                })?;
            }
            tokio::fs::write(&path, &bytes)
                .await
                .map_err(|e| err(&self.url, &format!("cannot write '{}'", path.display()), e))?;
        }
        Ok(left)
    }

    /// Deletes what no manifest of `keep` needs (older checkpoints and
    /// incomplete ones), or everything when `keep` is empty.
    pub async fn retain(&self, keep: &[Manifest]) -> Result<()> {
        let needed: BTreeSet<Path> = keep
            .iter()
            .flat_map(|m| {
                m.files
                    .values()
                    .map(|(k, _)| self.key(k))
                    .chain(std::iter::once(
                        self.key(&format!("chk-{}/{MANIFEST}", m.id)),
                    ))
            })
            .collect();
        let newest = keep.iter().map(|m| m.id).max().unwrap_or(0);
        let objects = self.objects().await?;
        for o in objects {
            // A checkpoint newer than the kept ones is being written: not ours to delete.
            let id = o.location.parts().find_map(|p| {
                p.as_ref()
                    .strip_prefix("chk-")
                    .and_then(|n| n.parse::<CheckpointId>().ok())
            });
            if id.is_some_and(|id| id > newest && !keep.is_empty()) || needed.contains(&o.location)
            {
                continue;
            }
            if let Err(e) = self.store.delete(&o.location).await {
                tracing::warn!(url = %self.url, object = %o.location, "cannot delete an old checkpoint object: {e}");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two checkpoints of a database: the second uploads the file it adds
    /// and points at the first's object for the SST they share; a restore
    /// downloads what the local copy lacks; retention deletes what only the
    /// first needed.
    #[tokio::test]
    async fn uploads_are_incremental_and_retention_keeps_what_is_shared() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let remote = RemoteCheckpoints::with_store(store.clone(), "job", "memory://");
        let dir = std::env::temp_dir().join(format!("vigil-remote-{}", std::process::id()));
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("dir");
            std::fs::write(p, bytes).expect("file");
        };
        write("keyed/a/000007.sst", b"seven");
        write("keyed/a/MANIFEST", b"m1");
        let files = |names: &[(&str, u64)]| -> BTreeMap<String, u64> {
            names.iter().map(|(n, s)| (n.to_string(), *s)).collect()
        };
        let first = remote
            .upload(
                1,
                &dir,
                &files(&[("keyed/a/000007.sst", 5), ("keyed/a/MANIFEST", 2)]),
                None,
            )
            .await
            .expect("first");
        write("keyed/a/000009.sst", b"nine!");
        write("keyed/a/MANIFEST", b"m22");
        let second = remote
            .upload(
                2,
                &dir,
                &files(&[
                    ("keyed/a/000007.sst", 5),
                    ("keyed/a/000009.sst", 5),
                    ("keyed/a/MANIFEST", 3),
                ]),
                Some(&first),
            )
            .await
            .expect("second");
        assert_eq!(
            second.files["keyed/a/000007.sst"].0,
            "chk-1/keyed/a/000007.sst"
        );
        assert_eq!(
            second.files["keyed/a/000009.sst"].0,
            "chk-2/keyed/a/000009.sst"
        );
        assert_eq!(
            second.files["keyed/a/MANIFEST"].0, "chk-2/keyed/a/MANIFEST",
            "only SST files are shared"
        );
        let listed = remote.manifests().await.expect("list");
        assert_eq!(listed.iter().map(|m| m.id).collect::<Vec<_>>(), vec![2, 1]);
        // The second checkpoint again: its manifest exists, so a second writer fails.
        assert!(remote.upload(2, &dir, &files(&[]), None).await.is_err());
        remote
            .retain(std::slice::from_ref(&second))
            .await
            .expect("retain");
        let left: Vec<String> = store
            .list(None)
            .map_ok(|o| o.location.to_string())
            .try_collect()
            .await
            .expect("list");
        assert!(
            left.contains(&"job/chk-1/keyed/a/000007.sst".to_string()),
            "{left:?}"
        );
        assert!(
            !left
                .iter()
                .any(|k| k == "job/chk-1/keyed/a/MANIFEST" || k == "job/chk-1/_manifest"),
            "{left:?}"
        );
        let restored = dir.join("restored");
        remote.download(&second, &restored).await.expect("download");
        assert_eq!(
            std::fs::read(restored.join("keyed/a/000009.sst")).expect("file"),
            b"nine!"
        );
        assert_eq!(
            std::fs::read(restored.join("keyed/a/000007.sst")).expect("file"),
            b"seven"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
