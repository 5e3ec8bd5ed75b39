//! The join of thumbnails and moderation: whichever finishes last publishes `update_profile_url`.

use shared::photos::{PhotoStore, ProfileUrlJob};
use shared::{JobResult, Publisher, ResultExt};
use uuid::Uuid;

/// Publishes the profile job if this handler completed the join. The claim is committed only
/// after the broker confirmed the job, so a crash in between lets a redelivery try again.
pub async fn complete(
    store: &PhotoStore,
    publisher: &Publisher,
    image_id: Uuid,
    user_id: &str,
) -> JobResult {
    let Some(claim) = store
        .claim_profile_update(image_id)
        .await
        .or_retry("claiming the profile update")?
    else {
        return Ok(());
    };
    let job = ProfileUrlJob {
        image_id,
        user_id: user_id.to_owned(),
    };
    publisher
        .publish(&job)
        .await
        .or_retry("publishing update_profile_url")?;
    claim
        .commit()
        .await
        .or_retry("committing the profile claim")?;
    tracing::info!(%image_id, "thumbnails and moderation done; profile update queued");
    Ok(())
}
