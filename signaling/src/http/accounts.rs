//! Account management for coordinators (volunteers: lawyers and interpreters)
//! and admins (everyone, including coordinators and admins).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::views::AccountView;
use super::{ApiError, ApiJson, AppState};
use crate::auth::{ClientAddr, Principal};
use crate::domain::{
    Language, Role, Topic, check_display_name, check_password, check_time_zone, check_username,
};
use crate::ids::{AccountId, RegionId};
use crate::store::{AccountPatch, AccountRecord, AuditEntry, NewAccount};
use crate::{password, unix_now};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    /// 1 to 64 of a-z, 0-9, `.`, `_`, `-`.
    #[schema(example = "lawyer-zhang", pattern = "^[a-z0-9._-]{1,64}$")]
    pub username: String,
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub display_name: String,
    /// At least 8 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
    #[schema(min_items = 1)]
    pub roles: Vec<Role>,
    #[serde(default)]
    pub languages: Vec<Language>,
    #[serde(default)]
    pub topics: Vec<Topic>,
    /// IANA time zone; default `Asia/Shanghai`.
    #[serde(default)]
    #[schema(max_length = 64, example = "Asia/Shanghai")]
    pub time_zone: Option<String>,
    /// Regions a coordinator answers for (admins only).
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub regions: Option<Vec<RegionId>>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchAccount {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub display_name: Option<String>,
    #[schema(max_length = 64, example = "Asia/Shanghai")]
    pub time_zone: Option<String>,
    /// false deactivates: the account's sessions end and its connections close.
    pub active: Option<bool>,
    #[schema(min_items = 1)]
    pub roles: Option<Vec<Role>>,
    pub languages: Option<Vec<Language>>,
    pub topics: Option<Vec<Topic>>,
    /// Regions a coordinator answers for (admins only).
    #[schema(value_type = Option<Vec<String>>)]
    pub regions: Option<Vec<RegionId>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
}

const VOLUNTEER_ROLES: [Role; 2] = [Role::Lawyer, Role::Interpreter];

fn is_volunteer_only(roles: &[Role]) -> bool {
    roles.iter().all(|r| VOLUNTEER_ROLES.contains(r))
}

/// 403 unless the caller may manage an account with `target_roles`:
/// admins manage anyone, coordinators only volunteers.
fn require_manager(principal: &Principal, target_roles: &[Role]) -> Result<(), ApiError> {
    let caller = principal.require_any(&[Role::Coordinator, Role::Admin])?;
    if caller.has_role(Role::Admin) || is_volunteer_only(target_roles) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

async fn check_regions(state: &AppState, regions: &[RegionId]) -> Result<(), ApiError> {
    for region in regions {
        if state.store.region(region).await?.is_none() {
            return Err(ApiError::bad_request("invalid_field", format!("regions: no region {region:?}")));
        }
    }
    Ok(())
}

/// Accounts the caller manages: everyone for admins; for coordinators,
/// themselves and the volunteers of their regions (see [`Principal::manages_volunteer`]).
#[utoipa::path(
    get,
    path = "/api/accounts",
    tag = "accounts",
    security(("bearer" = [])),
    responses((status = 200, body = [AccountView]), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody))
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<ApiJson<Vec<AccountView>>, ApiError> {
    let caller = principal.require_any(&[Role::Coordinator, Role::Admin])?;
    let admin = caller.has_role(Role::Admin);
    let accounts = state.store.accounts().await?;
    let mut regions: std::collections::HashMap<AccountId, Vec<RegionId>> = std::collections::HashMap::new();
    for (account, region) in state.store.member_regions().await? {
        regions.entry(account).or_default().push(region);
    }
    let none = Vec::new();
    Ok(ApiJson(
        accounts
            .iter()
            .filter(|a| {
                admin
                    || a.id == caller.id
                    || (is_volunteer_only(&a.roles)
                        && principal.manages_volunteer(regions.get(&a.id).unwrap_or(&none)))
            })
            .map(AccountView::from)
            .collect(),
    ))
}

/// Creates an account. Coordinators create lawyers and interpreters; admins
/// create anyone.
#[utoipa::path(
    post,
    path = "/api/accounts",
    tag = "accounts",
    security(("bearer" = [])),
    request_body = CreateAccount,
    responses((status = 503, description = "`unavailable`: too many password checks at once; try again", body = super::ErrorBody), 
        (status = 201, body = AccountView),
        (status = 400, body = super::ErrorBody),
        (status = 403, body = super::ErrorBody),
        (status = 409, description = "Username taken", body = super::ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    ApiJson(request): ApiJson<CreateAccount>,
) -> Result<(StatusCode, ApiJson<AccountView>), ApiError> {
    require_manager(&principal, &request.roles)?;
    check_username(&request.username)?;
    let display_name = check_display_name(&request.display_name)?;
    check_password(&request.password)?;
    if request.roles.is_empty() {
        return Err(ApiError::bad_request("invalid_field", "roles: at least one"));
    }
    let time_zone = request.time_zone.clone().unwrap_or_else(|| "Asia/Shanghai".into());
    check_time_zone(&time_zone)?;
    if let Some(regions) = &request.regions {
        if !principal.is_admin() {
            return Err(ApiError::Forbidden);
        }
        check_regions(&state, regions).await?;
    }
    let password_hash = password::hash_blocking(request.password).await?;
    let roles = dedup(request.roles);
    let audit = AuditEntry::new(
        &principal.actor(),
        "account.created",
        "",
        serde_json::json!({"username": request.username, "roles": roles}),
        &source,
    );
    let new = NewAccount {
        username: request.username.clone(),
        display_name,
        password_hash,
        time_zone,
        roles,
        languages: dedup(request.languages),
        topics: dedup(request.topics),
    };
    let regions = dedup(request.regions.unwrap_or_default());
    let id = state.store.create_account(&new, &regions, &audit).await?;
    state.scheduler.invalidate();
    let account = state.store.account(&id).await?.ok_or(ApiError::NotFound)?;
    Ok((StatusCode::CREATED, ApiJson(AccountView::from(&account))))
}

fn dedup<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// Loads the target and checks the caller may manage it. Coordinators get 404,
/// not 403, for accounts they cannot see, so they learn nothing of them.
async fn managed_target(
    state: &AppState,
    principal: &Principal,
    id: &AccountId,
) -> Result<AccountRecord, ApiError> {
    let caller = principal.require_any(&[Role::Coordinator, Role::Admin])?;
    let target = state.store.account(id).await?.ok_or(ApiError::NotFound)?;
    if caller.has_role(Role::Admin) || target.id == caller.id {
        return Ok(target);
    }
    if is_volunteer_only(&target.roles)
        && principal.manages_volunteer(&state.store.regions_of_member(&target.id).await?)
    {
        return Ok(target);
    }
    Err(ApiError::NotFound)
}

#[utoipa::path(
    get,
    path = "/api/accounts/{id}",
    tag = "accounts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Account id")),
    responses((status = 200, body = AccountView), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody))
)]
pub async fn read(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<AccountId>,
) -> Result<ApiJson<AccountView>, ApiError> {
    let target = managed_target(&state, &principal, &id).await?;
    Ok(ApiJson(AccountView::from(&target)))
}

/// Changes an account. Deactivating it ends its sessions and closes its
/// connections at once.
#[utoipa::path(
    patch,
    path = "/api/accounts/{id}",
    tag = "accounts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Account id")),
    request_body = PatchAccount,
    responses(
        (status = 200, body = AccountView),
        (status = 400, body = super::ErrorBody),
        (status = 403, body = super::ErrorBody),
        (status = 404, body = super::ErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    Path(id): Path<AccountId>,
    ApiJson(request): ApiJson<PatchAccount>,
) -> Result<ApiJson<AccountView>, ApiError> {
    let target = managed_target(&state, &principal, &id).await?;
    let caller = principal.account()?;
    if let Some(roles) = &request.roles {
        require_manager(&principal, roles)?;
        if roles.is_empty() {
            return Err(ApiError::bad_request("invalid_field", "roles: at least one"));
        }
        if target.id == caller.id && !roles.contains(&Role::Admin) && caller.has_role(Role::Admin) {
            return Err(ApiError::bad_request("invalid_field", "you cannot remove your own admin role"));
        }
    }
    if target.id == caller.id && request.active == Some(false) {
        return Err(ApiError::bad_request("invalid_field", "you cannot deactivate yourself"));
    }
    if request.regions.is_some() && !principal.is_admin() {
        return Err(ApiError::Forbidden);
    }
    let display_name = request.display_name.as_deref().map(check_display_name).transpose()?;
    if let Some(zone) = &request.time_zone {
        check_time_zone(zone)?;
    }
    if let Some(regions) = &request.regions {
        check_regions(&state, regions).await?;
    }
    let access_changed = request.roles.is_some() || request.regions.is_some();
    let patch = AccountPatch {
        display_name,
        time_zone: request.time_zone.clone(),
        active: request.active,
        roles: request.roles.map(dedup),
        languages: request.languages.map(dedup),
        topics: request.topics.map(dedup),
        regions: request.regions.map(dedup),
    };
    let detail = serde_json::json!({
        "active": patch.active,
        "roles": patch.roles,
        "languages": patch.languages,
        "topics": patch.topics,
        "regions": patch.regions,
        "display_name_changed": patch.display_name.is_some(),
        "time_zone": patch.time_zone,
    });
    let audit = AuditEntry::new(&principal.actor(), "account.updated", &id, detail, &source);
    // Deactivating also ends the account's sessions and calendar feed, in the same transaction.
    if !state.store.update_account(&id, &patch, unix_now(), &audit).await? {
        return Err(ApiError::NotFound);
    }
    state.scheduler.invalidate();
    if patch.active == Some(false) {
        state.connections.close_account(&id, "account deactivated");
    } else if access_changed {
        // An open WebSocket carries what its owner may see (the live view's
        // regions, whether it may be rung): it reconnects with the new roles.
        state.connections.close_account(&id, "roles or regions changed");
    }
    let account = state.store.account(&id).await?.ok_or(ApiError::NotFound)?;
    Ok(ApiJson(AccountView::from(&account)))
}

/// Sets a new password: an admin for anyone they manage, or a person for
/// themselves. Coordinators may not: whoever sets a password can sign in as
/// that lawyer and read their consultation records. The account's sessions
/// end, so whoever held the old password is signed out.
#[utoipa::path(
    post,
    path = "/api/accounts/{id}/password",
    tag = "accounts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Account id")),
    request_body = SetPassword,
    responses((status = 503, description = "`unavailable`: too many password checks at once; try again", body = super::ErrorBody), (status = 204), (status = 400, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody))
)]
pub async fn set_password(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    Path(id): Path<AccountId>,
    ApiJson(request): ApiJson<SetPassword>,
) -> Result<StatusCode, ApiError> {
    let target = managed_target(&state, &principal, &id).await?;
    let caller = principal.account()?;
    if !(caller.has_role(Role::Admin) || caller.id == target.id) {
        return Err(ApiError::Forbidden);
    }
    check_password(&request.password)?;
    let hash = password::hash_blocking(request.password).await?;
    let audit = AuditEntry::new(
        &principal.actor(),
        "account.password_reset",
        &target.id,
        serde_json::Value::Null,
        &source,
    );
    // Ends the account's sessions in the same transaction.
    state.store.set_password_hash(&target.id, &hash, unix_now(), &audit).await?;
    state.connections.close_account(&target.id, "password reset");
    Ok(StatusCode::NO_CONTENT)
}
