//! Opens each operator instance's keyed state before the job runs: its
//! database (restored from the checkpoint's parts for its key groups, or
//! new), and the tables the operator declares in it.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::graph::{NodeId, StateUid};
use crate::operator::Operator;
use crate::state::keyed::backend::{assemble, part_name, Part};
use crate::state::keyed::{
    key_group_range, CacheBudget, KeyedBackend, StateContext, StateSettings,
};
use crate::{EngineError, Result};

/// An operator instance's keyed state, as its task checkpoints it.
pub(super) struct InstanceState {
    /// Its database.
    pub backend: Arc<KeyedBackend>,
    /// Its directory name in a checkpoint (identity and key groups).
    pub part: String,
}

/// One operator of a task's chain.
pub(super) struct Stage {
    pub node: NodeId,
    pub op: Box<dyn Operator>,
    /// `None` for an operator without declared tables.
    pub state: Option<InstanceState>,
    /// The last watermark the operator received (what `CURRENT_WATERMARK`
    /// reads while it processes a batch).
    pub watermark: Option<crate::message::EventTime>,
}

/// Distinguishes the temporary state directories of jobs run by one process.
static JOB_SEQ: AtomicU64 = AtomicU64::new(0);

/// Opens the keyed state of every operator instance of a job.
pub(super) struct StateSetup {
    key_groups: u16,
    budget: Arc<CacheBudget>,
    /// The working directory of checkpointed keyed state (`None`: the job
    /// does not checkpoint, and spills to a temporary directory).
    working: Option<PathBuf>,
    temp_prefix: PathBuf,
    restored: BTreeMap<NodeId, Vec<Part>>,
}

impl StateSetup {
    pub fn new(
        settings: &StateSettings,
        key_groups: u16,
        working: Option<PathBuf>,
        restored: BTreeMap<NodeId, Vec<Part>>,
    ) -> Self {
        let seq = JOB_SEQ.fetch_add(1, Ordering::Relaxed);
        Self {
            key_groups,
            budget: CacheBudget::new(settings.cache_size),
            working,
            temp_prefix: settings
                .tmp_dir
                .join(format!("vigil-state-{}-{seq}", std::process::id())),
            restored,
        }
    }

    fn backend(
        &self,
        node: NodeId,
        part: &str,
        mine: &RangeInclusive<u16>,
    ) -> Result<KeyedBackend> {
        let Some(working) = &self.working else {
            let dir = PathBuf::from(format!("{}-{part}", self.temp_prefix.display()));
            return Ok(KeyedBackend::new(dir, true));
        };
        let dir = working.join(part);
        let parts: Vec<Part> = self
            .restored
            .get(&node)
            .into_iter()
            .flatten()
            .filter(|p| p.key_groups.start() <= mine.end() && mine.start() <= p.key_groups.end())
            .cloned()
            .collect();
        if parts.is_empty() {
            Ok(KeyedBackend::new(dir, false))
        } else {
            assemble(&dir, &parts, mine)
        }
    }

    /// Instance `instance` of `parallelism` of operator `op` (node `node`,
    /// identity `uid`), with its tables declared.
    pub fn stage(
        &self,
        node: NodeId,
        uid: StateUid,
        instance: usize,
        parallelism: usize,
        mut op: Box<dyn Operator>,
    ) -> Result<Stage> {
        let mine = key_group_range(instance, parallelism, self.key_groups);
        let part = part_name(uid, &mine);
        let backend = Arc::new(self.backend(node, &part, &mine)?);
        let mut ctx = StateContext::new(
            backend.clone(),
            self.key_groups,
            mine,
            self.budget.clone(),
            self.working.is_some(),
        )
        .for_subtask(instance, parallelism);
        op.open(&mut ctx).map_err(|e| {
            EngineError::State(format!("cannot open the state of '{}': {e}", op.name()))
        })?;
        let declared = ctx.declared().len();
        let handed = op.state_tables().len();
        if declared != handed {
            // A table the runtime cannot see would never be checkpointed.
            return Err(EngineError::State(format!(
                "'{}' declares {declared} state tables but hands {handed} to checkpoints",
                op.name()
            )));
        }
        let state = (declared > 0).then_some(InstanceState { backend, part });
        Ok(Stage {
            node,
            op,
            state,
            watermark: None,
        })
    }
}
