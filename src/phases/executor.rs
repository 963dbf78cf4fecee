//! The executor: runs the plan's steps in order, skipping those the state records as done,
//! recording each one as it completes. Each phase's file holds what its steps do.

use super::context::Runner;
use super::{
    cleanup, copy, cutover, dump, finalize, install, prepare, replicate, rollback, values_secret,
    verify,
};
use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::plan::select::{self, Decision};
use crate::plan::{Action, Phase, Step};
use crate::state::now;

impl Runner<'_> {
    /// Runs the steps of phase `only` (all of the migration when `None`) that are not done yet.
    pub async fn run(&mut self, only: Option<Phase>) -> Result<()> {
        let steps: Vec<Step> = self.state.plan.steps.clone();
        for step in &steps {
            let done = self.state.is_done(&step.id);
            match select::decide(step, only, done, self.deletes_confirmed) {
                Decision::Pass => continue,
                Decision::DoneEarlier => {
                    self.event(
                        &step.id,
                        "skipped",
                        &format!("{} (done earlier)", step.title),
                    );
                    continue;
                }
                Decision::EarlierPhaseUnfinished => {
                    return Err(Error::new(
                        ExitCode::Precondition,
                        format!(
                            "step {} of phase {} has not run yet; phase {} starts after it",
                            step.id,
                            step.phase.name(),
                            only.map(Phase::name).unwrap_or_default()
                        ),
                    )
                    .hint(format!(
                        "run `{}` first (or the whole migration)",
                        self.command(step.phase.name())
                    )));
                }
                Decision::Run { confirm } => {
                    if confirm && step.phase == Phase::Rollback {
                        rollback::confirm(self).await?;
                    } else if confirm {
                        let deletes = self.state.plan.deletes.clone();
                        cutover::confirm(self, &deletes).await?;
                    }
                }
            }
            self.event(&step.id, "started", &step.title);
            let detail = self.execute(step).await.map_err(|mut e| {
                if e.hint.is_none() {
                    e.hint = Some(self.rerun_hint());
                }
                e.message = format!("step {} failed: {}", step.id, e.message);
                e
            })?;
            self.state.mark_done(&step.id, now(), &self.store.holder);
            self.save().await?;
            self.event(&step.id, "done", &detail);
        }
        Ok(())
    }

    async fn execute(&mut self, step: &Step) -> Result<String> {
        match &step.action {
            Action::SaveValues { secret } => values_secret::save(self, secret).await,
            Action::RecordReplicas { deployments } => {
                prepare::record_replicas(self, deployments).await
            }
            Action::StagePasswords => prepare::stage_passwords(self).await,
            Action::NewDatabase => prepare::new_database(self).await,
            Action::CopyPod => prepare::copy_pod(self).await,
            Action::ScaleDown {
                deployments,
                selectors,
            } => copy::scale_down(self, deployments, selectors).await,
            Action::BackupVolume => dump::volume(self).await,
            Action::Dump => dump::dump(self).await,
            Action::VerifyBackup => dump::verify(self).await,
            Action::LocalCopy { path } => dump::local_copy(self, path).await,
            Action::Copy => copy::copy(self).await,
            Action::Prove if self.state.plan.online.is_some() => replicate::prove(self).await,
            Action::Prove => copy::prove(self).await,
            Action::WalLevel => replicate::wal_level(self).await,
            Action::ReplicaIdentity => replicate::replica_identity(self).await,
            Action::Subscribe => replicate::subscribe(self).await,
            Action::InitialCopy => replicate::initial_copy(self).await,
            Action::ProveLive => replicate::prove_live(self).await,
            Action::CatchUp => replicate::catch_up(self).await,
            Action::SyncSequences => replicate::sync_sequences(self).await,
            Action::Unsubscribe => replicate::unsubscribe(self).await,
            Action::UndoReplication => replicate::undo(self).await,
            Action::Confirm { deletes } => cutover::confirm(self, deletes).await,
            Action::RetainVolumes { volumes } => cutover::retain(self, volumes).await,
            Action::HelmUninstall => cutover::helm_uninstall(self).await,
            Action::RebindAttachments { volume, claim } => {
                cutover::rebind(self, volume, claim).await
            }
            Action::DeleteClaims { claims } => cutover::delete_claims(self, claims).await,
            Action::BindDatabase => cutover::bind_database(self).await,
            Action::ReplaceSecrets {
                secrets,
                keep_passwords,
            } => cutover::secrets(self, secrets, *keep_passwords).await,
            Action::HelmInstall => install::helm_install(self).await,
            Action::WaitApp { deployments } => install::wait_app(self, deployments).await,
            Action::ClearOnboarding { pod, host } => {
                finalize::clear_onboarding(self, pod, host).await
            }
            Action::Verify => verify::report(self).await,
            Action::RemoveBackup { objects } => cleanup::remove_backup(self, objects).await,
            Action::DeleteReleasedVolumes { volumes } => {
                cleanup::delete_released(self, volumes).await
            }
            Action::RestoreReclaimPolicy { volume, policy } => {
                cleanup::restore_policy(self, volume, policy).await
            }
            Action::RestoreReplicas { replicas } => {
                rollback::restore_replicas(self, replicas).await
            }
            Action::RestoreReclaimPolicies { policies } => {
                rollback::restore_policies(self, policies).await
            }
            Action::UninstallTarget => rollback::uninstall(self).await,
            Action::ReleaseClaims { claims } => rollback::release_claims(self, claims).await,
            Action::RebindVolumes { volumes } => rollback::rebind_volumes(self, volumes).await,
            Action::RestoreSecrets { secrets } => rollback::restore_secrets(self, secrets).await,
            Action::ReinstallOriginal => rollback::reinstall(self).await,
            Action::CheckOriginalDatabase => rollback::check_database(self).await,
        }
    }
}
