//! Referrals: a consultation's matter handed to the receiving office of the
//! terminal's region (legal aid, people's mediation, ...), with the resident's
//! consent, and followed by the office's caseworkers to an outcome.
//!
//! The lawyer proposes (`referral.proposed` goes to the kiosk); the resident
//! agrees or not on the kiosk (`referral.answered` goes to the lawyer); an
//! agreed referral gets a reference code any kiosk can look up. Offices are
//! configured per region by its coordinators and admins. Every read and
//! change is audited; a caller who may not see a referral gets 404.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::views::{OfficeCountsView, OfficeView, ReferralSight, ReferralStatusView, ReferralView};
use super::{ApiError, ApiJson, ApiQuery, AppState};
use crate::auth::{ClientAddr, Principal};
use crate::domain::{Language, Role};
use crate::ids::{AccountId, ConsultationId, OfficeId, ReferralId, RegionId};
use crate::store::{
    AuditEntry, NewReferral, OfficeNames, OfficeRecord, ReferralChange, ReferralFilter, ReferralRecord,
    ReferralScope, StoreError,
};
use crate::ws::protocol::ServerMessage;

/// How a caseworker may close a referral.
pub const OUTCOMES: [&str; 7] = [
    "legal_aid_granted",
    "legal_aid_refused",
    "mediated",
    "mediation_failed",
    "withdrawn",
    "unreachable",
    "other",
];

/// A lawyer may propose while the consultation runs and this long after it ended;
/// the resident has as long again to answer on the kiosk.
pub const PROPOSAL_WINDOW_SECS: i64 = crate::retention::PROPOSAL_SECS;

/// The reference code's alphabet: no 0/O, 1/I/L to confuse.
const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
const CODE_LEN: usize = 8;

// ---------------------------------------------------------------- offices

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOffice {
    /// `legal_aid`, `mediation`, or another code of 2 to 32 of a-z and '_'.
    pub service: String,
    /// 1 to 200 characters.
    pub name: String,
    /// Its name in the languages its residents read, by language code
    /// (`{"bo": "..."}`): at most 10, each 1 to 200 characters.
    #[serde(default)]
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub names: OfficeNames,
    /// The office's decision period, 1 to 365 days.
    pub decision_days: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOffice {
    pub name: String,
    /// All its names in other languages (those left out are removed).
    #[serde(default)]
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub names: OfficeNames,
    pub decision_days: i64,
    /// Every caseworker of the office (accounts with the caseworker role).
    #[schema(value_type = Vec<String>)]
    pub caseworkers: Vec<AccountId>,
}

/// An office's name (trimmed, 1 to 200 characters, no control characters).
fn office_name(field: &str, name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if !(1..=200).contains(&name.chars().count()) || name.chars().any(char::is_control) {
        let message = format!("{field}: 1 to 200 characters, no control characters");
        return Err(ApiError::bad_request("invalid_field", message));
    }
    Ok(name.to_owned())
}

/// The office's name, names and decision period, checked.
fn office_fields(
    name: &str,
    names: &OfficeNames,
    decision_days: i64,
) -> Result<(String, OfficeNames), ApiError> {
    let name = office_name("name", name)?;
    if names.0.len() > 10 {
        return Err(ApiError::bad_request("invalid_field", "names: at most 10 languages"));
    }
    let mut checked = OfficeNames::default();
    for (language, text) in &names.0 {
        if Language::parse(language).is_err() {
            let message = format!("names: {language:?} is not a language code like \"bo\"");
            return Err(ApiError::bad_request("invalid_field", message));
        }
        checked.0.insert(language.clone(), office_name(&format!("names.{language}"), text)?);
    }
    if !(1..=365).contains(&decision_days) {
        return Err(ApiError::bad_request("invalid_field", "decision_days: 1 to 365"));
    }
    Ok((name, checked))
}

/// The region, when the caller is one of its coordinators or an admin; a
/// refusal is audited.
async fn managed_region(
    state: &AppState,
    principal: &Principal,
    region: &RegionId,
    source: &str,
) -> Result<(), ApiError> {
    let role = principal.require_any(&[Role::Coordinator, Role::Admin]);
    state.audit_refusal(principal, "office.denied", region, source, role).await?;
    if state.store.region(region).await?.is_none() {
        return Err(ApiError::NotFound);
    }
    if !principal.manages_region(region) {
        return Err(state.refuse(principal, "office.denied", region, source).await);
    }
    Ok(())
}

async fn office_views(state: &AppState, region: &RegionId) -> Result<Vec<OfficeView>, ApiError> {
    let caseworkers = state.store.caseworkers_in_region(region).await?;
    Ok(state
        .store
        .offices_in_region(region)
        .await?
        .iter()
        .map(|o| OfficeView::new(o, &caseworkers))
        .collect())
}

/// A region's receiving offices (its coordinators, admins).
#[utoipa::path(
    get,
    path = "/api/regions/{id}/offices",
    tag = "referrals",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Region id")),
    responses((status = 200, body = [OfficeView]), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody))
)]
pub async fn offices(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    Path(region): Path<RegionId>,
) -> Result<ApiJson<Vec<OfficeView>>, ApiError> {
    managed_region(&state, &principal, &region, &source).await?;
    let views = office_views(&state, &region).await?;
    let detail = serde_json::json!({"count": views.len()});
    state.audit(&principal.actor(), "office.listed", &region, detail, &source).await?;
    Ok(ApiJson(views))
}

/// Adds a region's office for a service (its coordinators, admins).
#[utoipa::path(
    post,
    path = "/api/regions/{id}/offices",
    tag = "referrals",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Region id")),
    request_body = CreateOffice,
    responses((status = 201, body = OfficeView), (status = 400, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody))
)]
pub async fn create_office(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    Path(region): Path<RegionId>,
    ApiJson(request): ApiJson<CreateOffice>,
) -> Result<(StatusCode, ApiJson<OfficeView>), ApiError> {
    managed_region(&state, &principal, &region, &source).await?;
    let service = request.service.as_str();
    let service_ok =
        (2..=32).contains(&service.len()) && service.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if !service_ok {
        return Err(ApiError::bad_request("invalid_field", "service: 2 to 32 of a-z and '_'"));
    }
    let (name, names) = office_fields(&request.name, &request.names, request.decision_days)?;
    let audit = AuditEntry::new(
        &principal.actor(),
        "office.created",
        &region,
        serde_json::json!({"service": service, "name": name, "names": names, "decision_days": request.decision_days}),
        &source,
    );
    let id =
        state.store.create_office(&region, service, &name, &names, request.decision_days, &audit).await?;
    let office = state.store.office(&id).await?.ok_or(ApiError::NotFound)?;
    Ok((StatusCode::CREATED, ApiJson(OfficeView::new(&office, &[]))))
}

/// Renames an office, sets its decision period and its caseworkers (the
/// region's coordinators, admins).
#[utoipa::path(
    put,
    path = "/api/offices/{id}",
    tag = "referrals",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Office id")),
    request_body = UpdateOffice,
    responses((status = 200, body = OfficeView), (status = 400, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody))
)]
pub async fn update_office(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    Path(id): Path<OfficeId>,
    ApiJson(request): ApiJson<UpdateOffice>,
) -> Result<ApiJson<OfficeView>, ApiError> {
    let role = principal.require_any(&[Role::Coordinator, Role::Admin]);
    state.audit_refusal(&principal, "office.denied", &id, &source, role).await?;
    let office = state.store.office(&id).await?.ok_or(ApiError::NotFound)?;
    if !principal.manages_region(&office.region_id) {
        return Err(state.refuse(&principal, "office.denied", &id, &source).await);
    }
    let (name, names) = office_fields(&request.name, &request.names, request.decision_days)?;
    if request.caseworkers.len() > 200 {
        return Err(ApiError::bad_request("invalid_field", "caseworkers: at most 200"));
    }
    for account in &request.caseworkers {
        let is_caseworker = state.store.account(account).await?.is_some_and(|a| a.has_role(Role::Caseworker));
        if !is_caseworker {
            return Err(ApiError::bad_request(
                "invalid_field",
                format!("caseworkers: {account} is not an account with the caseworker role"),
            ));
        }
    }
    let audit = AuditEntry::new(
        &principal.actor(),
        "office.updated",
        &id,
        serde_json::json!({"name": name, "names": names, "decision_days": request.decision_days, "caseworkers": request.caseworkers}),
        &source,
    );
    let (days, caseworkers) = (request.decision_days, &request.caseworkers);
    if !state.store.update_office(&id, &name, &names, days, caseworkers, &audit).await? {
        return Err(ApiError::NotFound);
    }
    let views = office_views(&state, &office.region_id).await?;
    views.into_iter().find(|o| o.id == id.as_str()).map(ApiJson).ok_or(ApiError::NotFound)
}

// ---------------------------------------------------------------- the lawyer proposes

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposeReferral {
    /// One of the consultation's region's offices.
    #[schema(value_type = String)]
    pub office: OfficeId,
    /// The matter, in the lawyer's words, for the office: 1 to 2,000 characters.
    pub matter: String,
}

/// An office as the lawyer chooses among them.
#[derive(Debug, Serialize, ToSchema)]
pub struct OfficeChoice {
    pub id: String,
    pub service: String,
    pub name: String,
    pub decision_days: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsultationReferrals {
    /// The consultation's region's offices.
    pub offices: Vec<OfficeChoice>,
    /// What was proposed in this consultation (a declined proposal is gone).
    pub referrals: Vec<ReferralView>,
}

/// The consultation, when the caller is its lawyer; else 404 (audited).
async fn own_consultation(
    state: &AppState,
    principal: &Principal,
    id: &ConsultationId,
    source: &str,
) -> Result<crate::store::ConsultationRecord, ApiError> {
    let lawyer = principal.account().ok().map(|a| a.id.clone());
    let record = state.store.consultation(id).await?.filter(|c| Some(&c.lawyer_id) == lawyer.as_ref());
    match record {
        Some(record) => Ok(record),
        None => {
            state.audit(&principal.actor(), "referral.denied", id, serde_json::Value::Null, source).await?;
            Err(ApiError::NotFound)
        }
    }
}

/// The offices the consultation's lawyer may refer to, and what they proposed.
#[utoipa::path(
    get,
    path = "/api/consultations/{id}/referrals",
    tag = "referrals",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Consultation id")),
    responses((status = 200, body = ConsultationReferrals), (status = 404, body = super::ErrorBody))
)]
pub async fn of_consultation(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    Path(id): Path<ConsultationId>,
) -> Result<ApiJson<ConsultationReferrals>, ApiError> {
    let consultation = own_consultation(&state, &principal, &id, &source).await?;
    let offices = state.store.offices_in_region(&consultation.region_id).await?;
    let now = crate::unix_now();
    let referrals = state.store.referrals_of_consultation(&id).await?;
    state
        .audit(
            &principal.actor(),
            "referral.listed",
            &id,
            serde_json::json!({"count": referrals.len()}),
            &source,
        )
        .await?;
    Ok(ApiJson(ConsultationReferrals {
        offices: offices
            .into_iter()
            .map(|o| OfficeChoice {
                id: o.id.to_string(),
                service: o.service,
                name: o.name,
                decision_days: o.decision_days,
            })
            .collect(),
        referrals: referrals.iter().map(|r| ReferralView::new(r, ReferralSight::Lawyer, now)).collect(),
    }))
}

/// The consultation's lawyer proposes a referral; the kiosk asks the resident.
#[utoipa::path(
    post,
    path = "/api/consultations/{id}/referrals",
    tag = "referrals",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Consultation id")),
    request_body = ProposeReferral,
    responses((status = 201, body = ReferralView), (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody))
)]
pub async fn propose(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    Path(id): Path<ConsultationId>,
    ApiJson(request): ApiJson<ProposeReferral>,
) -> Result<(StatusCode, ApiJson<ReferralView>), ApiError> {
    let consultation = own_consultation(&state, &principal, &id, &source).await?;
    let matter = request.matter.trim();
    if !(1..=2000).contains(&matter.chars().count()) {
        return Err(ApiError::bad_request("invalid_field", "matter: 1 to 2000 characters"));
    }
    let office = state
        .store
        .office(&request.office)
        .await?
        .filter(|o| o.region_id == consultation.region_id)
        .ok_or_else(|| {
            ApiError::bad_request("invalid_field", "office: not an office of the consultation's region")
        })?;
    let now = crate::unix_now();
    let terminal = state.store.terminal(&consultation.terminal_id).await?.ok_or(ApiError::NotFound)?;
    if terminal.channel == "phone" {
        return Err(ApiError::Clash {
            code: "no_kiosk",
            message: "a hotline caller has no kiosk on which to agree to a referral".into(),
        });
    }
    if consultation.ended_at.is_some_and(|ended| now > ended + PROPOSAL_WINDOW_SECS) {
        return Err(ApiError::Clash {
            code: "too_late",
            message: "the consultation ended more than 30 minutes ago; the resident has left the kiosk"
                .into(),
        });
    }
    // A proposal to this office that nobody answered in time goes, so the lawyer may ask again.
    state.store.forget_unanswered_referrals(now - PROPOSAL_WINDOW_SECS).await?;
    let account = principal.account()?;
    let new = NewReferral {
        consultation_id: &id,
        office_id: &office.id,
        terminal_id: &consultation.terminal_id,
        topic: &consultation.topic,
        language: &consultation.language,
        matter,
        proposed_by: &account.id,
        now,
    };
    let audit = AuditEntry::new(
        &principal.actor(),
        "referral.proposed",
        &id,
        serde_json::json!({"office": office.id, "service": office.service}),
        &source,
    );
    let referral = state.store.propose_referral(&new, &audit).await?;
    let record = state.store.referral(&referral).await?.ok_or(ApiError::NotFound)?;
    state.connections.push_to_terminal(
        &consultation.terminal_id,
        &ServerMessage::ReferralProposed {
            referral,
            consultation: id,
            service: office.service,
            office: office.name,
            office_names: office.names,
            expires_at: now + PROPOSAL_WINDOW_SECS,
        },
    );
    Ok((StatusCode::CREATED, ApiJson(ReferralView::new(&record, ReferralSight::Lawyer, now))))
}

// ---------------------------------------------------------------- the resident answers

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    pub agree: bool,
    /// How the office may reach the resident (a phone number, say), if they
    /// chose to give one: at most 100 characters.
    #[serde(default)]
    pub contact: Option<String>,
}

/// The kiosk's answer: the reference (with its QR code) when the resident
/// agreed, `{"status": "declined"}` when not.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ConsentAnswer {
    Agreed {
        #[serde(flatten)]
        referral: ReferralStatusView,
        /// The reference code as a QR code: an SVG document.
        qr_svg: String,
    },
    Declined {
        /// `declined`.
        status: &'static str,
    },
}

fn new_code() -> String {
    (0..CODE_LEN).map(|_| CODE_ALPHABET[rand::random_range(0..CODE_ALPHABET.len())] as char).collect()
}

fn qr_svg(code: &str) -> Result<String, ApiError> {
    let qr = qrcode::QrCode::new(code.as_bytes()).map_err(|e| ApiError::Internal(format!("QR code: {e}")))?;
    Ok(qr
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(240, 240)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build())
}

/// The referral's own terminal answers for the resident, once, while the
/// proposal stands. A refusal deletes the proposal.
#[utoipa::path(
    post,
    path = "/api/referrals/{id}/consent",
    tag = "referrals",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Referral id")),
    request_body = Consent,
    responses((status = 200, body = ConsentAnswer), (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody))
)]
pub async fn consent(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    Path(id): Path<ReferralId>,
    ApiJson(request): ApiJson<Consent>,
) -> Result<ApiJson<ConsentAnswer>, ApiError> {
    let own = match &principal {
        Principal::Terminal { terminal } => {
            state.store.referral(&id).await?.filter(|r| r.terminal_id == terminal.id)
        }
        Principal::Account { .. } => None,
    };
    let Some(referral) = own else {
        state.audit(&principal.actor(), "referral.denied", &id, serde_json::Value::Null, &source).await?;
        return Err(ApiError::NotFound);
    };
    let now = crate::unix_now();
    let answered =
        || ApiError::Clash { code: "answered", message: "this referral was answered already".into() };
    if referral.status != "proposed" {
        return Err(answered());
    }
    if now > referral.proposed_at + PROPOSAL_WINDOW_SECS {
        return Err(ApiError::Clash { code: "expired", message: "the lawyer's proposal has expired".into() });
    }
    let contact = request.contact.as_deref().map(str::trim).filter(|c| !c.is_empty());
    if contact.is_some_and(|c| c.chars().count() > 100 || c.chars().any(char::is_control)) {
        return Err(ApiError::bad_request(
            "invalid_field",
            "contact: at most 100 characters, no control characters",
        ));
    }
    let answered_push = |agreed| ServerMessage::ReferralAnswered {
        referral: id.clone(),
        consultation: referral.consultation_id.clone(),
        agreed,
    };
    if !request.agree {
        let audit =
            AuditEntry::new(&principal.actor(), "referral.declined", &id, serde_json::Value::Null, &source);
        if !state.store.decline_referral(&id, &audit).await? {
            return Err(answered());
        }
        state.connections.push_to_account(&referral.proposed_by, &answered_push(false));
        return Ok(ApiJson(ConsentAnswer::Declined { status: "declined" }));
    }
    let office = state.store.office(&referral.office_id).await?.ok_or(ApiError::NotFound)?;
    let due_at = now + office.decision_days * 86_400;
    let audit = AuditEntry::new(
        &principal.actor(),
        "referral.agreed",
        &id,
        serde_json::json!({"contact_given": contact.is_some()}),
        &source,
    );
    // A code already taken (one in about 10^12) is drawn again.
    let mut tries = 0;
    loop {
        tries += 1;
        match state.store.consent_referral(&id, &new_code(), contact, now, due_at, &audit).await {
            Ok(true) => break,
            Ok(false) => return Err(answered()),
            Err(StoreError::Conflict(_)) if tries < 5 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    state.connections.push_to_account(&referral.proposed_by, &answered_push(true));
    let agreed = state.store.referral(&id).await?.ok_or(ApiError::NotFound)?;
    let referral = ReferralStatusView::from(&agreed);
    let qr_svg = qr_svg(&referral.code)?;
    Ok(ApiJson(ConsentAnswer::Agreed { referral, qr_svg }))
}

/// A proposal waiting for the resident, as the kiosk is told it (`referral.proposed`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Proposal {
    pub referral: String,
    pub consultation: String,
    pub service: String,
    pub office: String,
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub office_names: OfficeNames,
    pub expires_at: i64,
}

/// The terminal's proposals that still wait for an answer: what a kiosk that
/// was offline when `referral.proposed` came asks when it connects again.
#[utoipa::path(
    get,
    path = "/api/referrals/proposed",
    tag = "referrals",
    security(("bearer" = [])),
    responses((status = 200, body = [Proposal]), (status = 403, body = super::ErrorBody))
)]
pub async fn proposed(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
) -> Result<ApiJson<Vec<Proposal>>, ApiError> {
    let Principal::Terminal { terminal } = &principal else {
        return Err(state.refuse(&principal, "referral.denied", "", &source).await);
    };
    let since = crate::unix_now() - PROPOSAL_WINDOW_SECS;
    let waiting = state.store.proposals_for_terminal(&terminal.id, since).await?;
    let count = serde_json::json!({"count": waiting.len()});
    state.audit(&principal.actor(), "referral.proposals_listed", "", count, &source).await?;
    Ok(ApiJson(
        waiting
            .into_iter()
            .map(|r| Proposal {
                referral: r.id.to_string(),
                consultation: r.consultation_id.to_string(),
                service: r.service,
                office: r.office_name,
                office_names: r.office_names,
                expires_at: r.proposed_at + PROPOSAL_WINDOW_SECS,
            })
            .collect(),
    ))
}

/// Where a referral stands, by its reference code, for any kiosk: nothing about
/// the person or the matter. Case, spaces and dashes are ignored.
#[utoipa::path(
    get,
    path = "/api/referral-status/{code}",
    tag = "referrals",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "Reference code, `XXXX-XXXX`")),
    responses((status = 200, body = ReferralStatusView), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody))
)]
pub async fn status(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    Path(code): Path<String>,
) -> Result<ApiJson<ReferralStatusView>, ApiError> {
    if !matches!(principal, Principal::Terminal { .. }) {
        return Err(state.refuse(&principal, "referral.denied", "", &source).await);
    }
    let code: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .take(CODE_LEN + 1)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let well_formed = code.len() == CODE_LEN && code.bytes().all(|b| CODE_ALPHABET.contains(&b));
    let found = if well_formed { state.store.referral_by_code(&code).await? } else { None };
    let Some(referral) = found else {
        state
            .audit(&principal.actor(), "referral.status_unknown", "", serde_json::Value::Null, &source)
            .await?;
        return Err(ApiError::NotFound);
    };
    state
        .audit(&principal.actor(), "referral.status_read", &referral.id, serde_json::Value::Null, &source)
        .await?;
    Ok(ApiJson(ReferralStatusView::from(&referral)))
}

// ---------------------------------------------------------------- caseworkers and overseers

/// What of the referrals a caller has: the offices they are a caseworker of,
/// and the regions they oversee (a coordinator's; every region for an admin).
struct Reach {
    offices: Vec<OfficeRecord>,
    regions: Vec<RegionId>,
}

impl Reach {
    /// A refusal is audited, as a read of `subject`.
    async fn of(
        state: &AppState,
        principal: &Principal,
        subject: &str,
        source: &str,
    ) -> Result<Reach, ApiError> {
        let role = principal.require_any(&[Role::Caseworker, Role::Coordinator, Role::Admin]);
        let account = state.audit_refusal(principal, "referral.denied", subject, source, role).await?;
        let offices = if account.has_role(Role::Caseworker) {
            state.store.offices_of_caseworker(&account.id).await?
        } else {
            Vec::new()
        };
        let regions = if account.has_role(Role::Admin) {
            state.store.regions().await?.into_iter().map(|r| r.id).collect()
        } else if account.has_role(Role::Coordinator) {
            account.regions.clone()
        } else {
            Vec::new()
        };
        Ok(Reach { offices, regions })
    }

    fn sight(&self, r: &ReferralRecord) -> Option<ReferralSight> {
        if r.status == "proposed" {
            None
        } else if self.offices.iter().any(|o| o.id == r.office_id) {
            Some(ReferralSight::Caseworker)
        } else if self.regions.contains(&r.region_id) {
            Some(ReferralSight::Overseer)
        } else {
            None
        }
    }

    fn office_ids(&self) -> Vec<OfficeId> {
        self.offices.iter().map(|o| o.id.clone()).collect()
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `open` (new and accepted; the default), `closed` or `all`.
    pub status: Option<String>,
}

/// The caller's referrals, the soonest due first: a caseworker's offices' in
/// full; a coordinator's regions' (an admin's: all) without matter and contact.
#[utoipa::path(
    get,
    path = "/api/referrals",
    tag = "referrals",
    security(("bearer" = [])),
    params(ListQuery),
    responses((status = 200, body = [ReferralView]), (status = 400, body = super::ErrorBody), (status = 403, body = super::ErrorBody))
)]
pub async fn list(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    query: ApiQuery<ListQuery>,
) -> Result<ApiJson<Vec<ReferralView>>, ApiError> {
    let query = query.parse()?;
    let filter = match query.status.as_deref() {
        None | Some("open") => ReferralFilter::Open,
        Some("closed") => ReferralFilter::Closed,
        Some("all") => ReferralFilter::All,
        Some(_) => return Err(ApiError::bad_request("invalid_field", "status: open, closed or all")),
    };
    let reach = Reach::of(&state, &principal, "", &source).await?;
    let mut records = state.store.referrals(ReferralScope::Offices(&reach.office_ids()), filter).await?;
    for r in state.store.referrals(ReferralScope::Regions(&reach.regions), filter).await? {
        if !records.iter().any(|known| known.id == r.id) {
            records.push(r);
        }
    }
    records.sort_by(|a, b| (a.due_at, &a.id).cmp(&(b.due_at, &b.id)));
    let now = crate::unix_now();
    let views: Vec<ReferralView> =
        records.iter().filter_map(|r| reach.sight(r).map(|sight| ReferralView::new(r, sight, now))).collect();
    state
        .audit(&principal.actor(), "referral.listed", "", serde_json::json!({"count": views.len()}), &source)
        .await?;
    Ok(ApiJson(views))
}

/// Counts per office for the caller's offices and regions, overdue ones apart.
#[utoipa::path(
    get,
    path = "/api/referrals/summary",
    tag = "referrals",
    security(("bearer" = [])),
    responses((status = 200, body = [OfficeCountsView]), (status = 403, body = super::ErrorBody))
)]
pub async fn summary(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
) -> Result<ApiJson<Vec<OfficeCountsView>>, ApiError> {
    let reach = Reach::of(&state, &principal, "", &source).await?;
    let now = crate::unix_now();
    let mut counts = state.store.referral_counts(ReferralScope::Regions(&reach.regions), now).await?;
    for c in state.store.referral_counts(ReferralScope::Offices(&reach.office_ids()), now).await? {
        if !counts.iter().any(|known| known.office_id == c.office_id) {
            counts.push(c);
        }
    }
    counts.sort_by(|a, b| (&a.region_id, &a.service).cmp(&(&b.region_id, &b.service)));
    let detail = serde_json::json!({"offices": counts.len()});
    state.audit(&principal.actor(), "referral.summary_read", "", detail, &source).await?;
    Ok(ApiJson(counts.iter().map(OfficeCountsView::from).collect()))
}

/// The referral and how much of it the caller sees, or 404 (audited).
async fn reached(
    state: &AppState,
    principal: &Principal,
    id: &ReferralId,
    source: &str,
) -> Result<(ReferralRecord, ReferralSight), ApiError> {
    let reach = Reach::of(state, principal, id, source).await?;
    let seen = state.store.referral(id).await?.and_then(|r| reach.sight(&r).map(|sight| (r, sight)));
    match seen {
        Some(seen) => Ok(seen),
        None => {
            state.audit(&principal.actor(), "referral.denied", id, serde_json::Value::Null, source).await?;
            Err(ApiError::NotFound)
        }
    }
}

async fn full_view(
    state: &AppState,
    id: &ReferralId,
    sight: ReferralSight,
) -> Result<ReferralView, ApiError> {
    let record = state.store.referral(id).await?.ok_or(ApiError::NotFound)?;
    let view = ReferralView::new(&record, sight, crate::unix_now());
    if sight != ReferralSight::Caseworker {
        return Ok(view);
    }
    let notes = state.store.referral_notes(id).await?;
    Ok(view.for_caseworkers(&notes, &state.store.caseworkers_in_region(&record.region_id).await?))
}

/// One referral: in full with its notes for its office's caseworkers; where it
/// stands for its region's coordinators.
#[utoipa::path(
    get,
    path = "/api/referrals/{id}",
    tag = "referrals",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Referral id")),
    responses((status = 200, body = ReferralView), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody))
)]
pub async fn read(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    Path(id): Path<ReferralId>,
) -> Result<ApiJson<ReferralView>, ApiError> {
    let (_, sight) = reached(&state, &principal, &id, &source).await?;
    state.audit(&principal.actor(), "referral.read", &id, serde_json::Value::Null, &source).await?;
    Ok(ApiJson(full_view(&state, &id, sight).await?))
}

/// A caseworker's change: checks that the caller is one of the referral's
/// office, then applies it with `action` in the audit log.
/// The referral, when the caller is a caseworker of its office: only they
/// change it (a coordinator who oversees it is refused, audited).
async fn as_caseworker(
    state: &AppState,
    principal: &Principal,
    id: &ReferralId,
    source: &str,
) -> Result<ReferralSight, ApiError> {
    let (_, sight) = reached(state, principal, id, source).await?;
    if sight != ReferralSight::Caseworker {
        return Err(state.refuse(principal, "referral.denied", id, source).await);
    }
    Ok(sight)
}

async fn change(
    state: &AppState,
    principal: &Principal,
    id: &ReferralId,
    source: &str,
    action: &str,
    detail: serde_json::Value,
    change: ReferralChange<'_>,
) -> Result<ApiJson<ReferralView>, ApiError> {
    let sight = as_caseworker(state, principal, id, source).await?;
    let audit = AuditEntry::new(&principal.actor(), action, id, detail, source);
    if !state.store.change_referral(id, change, crate::unix_now(), &audit).await? {
        return Err(ApiError::Clash {
            code: "wrong_status",
            message: "the referral's status does not allow this (accepted or closed already)".into(),
        });
    }
    Ok(ApiJson(full_view(state, id, sight).await?))
}

/// A caseworker of the office takes a new referral (and it is theirs, unless assigned).
#[utoipa::path(
    post,
    path = "/api/referrals/{id}/accept",
    tag = "referrals",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Referral id")),
    responses((status = 200, body = ReferralView), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody))
)]
pub async fn accept(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    Path(id): Path<ReferralId>,
) -> Result<ApiJson<ReferralView>, ApiError> {
    let account = principal.account().map(|a| a.id.clone());
    let by = state.audit_refusal(&principal, "referral.denied", &id, &source, account).await?;
    change(
        &state,
        &principal,
        &id,
        &source,
        "referral.accepted",
        serde_json::Value::Null,
        ReferralChange::Accept { by: &by },
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assign {
    /// A caseworker of the same office.
    #[schema(value_type = String)]
    pub account: AccountId,
}

/// Gives an open referral to a caseworker of its office.
#[utoipa::path(
    post,
    path = "/api/referrals/{id}/assign",
    tag = "referrals",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Referral id")),
    request_body = Assign,
    responses((status = 200, body = ReferralView), (status = 400, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody))
)]
pub async fn assign(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    Path(id): Path<ReferralId>,
    ApiJson(request): ApiJson<Assign>,
) -> Result<ApiJson<ReferralView>, ApiError> {
    let (referral, _) = reached(&state, &principal, &id, &source).await?;
    if !state.store.is_caseworker_of(&request.account, &referral.office_id).await? {
        return Err(ApiError::bad_request(
            "invalid_field",
            "account: not a caseworker of this referral's office",
        ));
    }
    let detail = serde_json::json!({"to": request.account});
    change(
        &state,
        &principal,
        &id,
        &source,
        "referral.assigned",
        detail,
        ReferralChange::Assign { to: &request.account },
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Close {
    /// `legal_aid_granted`, `legal_aid_refused`, `mediated`, `mediation_failed`,
    /// `withdrawn`, `unreachable` or `other`.
    pub outcome: String,
}

/// Closes an open referral with its outcome; a closed one changes no more.
#[utoipa::path(
    post,
    path = "/api/referrals/{id}/close",
    tag = "referrals",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Referral id")),
    request_body = Close,
    responses((status = 200, body = ReferralView), (status = 400, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody))
)]
pub async fn close(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    Path(id): Path<ReferralId>,
    ApiJson(request): ApiJson<Close>,
) -> Result<ApiJson<ReferralView>, ApiError> {
    if !OUTCOMES.contains(&request.outcome.as_str()) {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("outcome: one of {}", OUTCOMES.join(", ")),
        ));
    }
    let detail = serde_json::json!({"outcome": request.outcome});
    change(
        &state,
        &principal,
        &id,
        &source,
        "referral.closed",
        detail,
        ReferralChange::Close { outcome: &request.outcome },
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Note {
    /// 1 to 4,000 characters.
    pub text: String,
}

/// A caseworker's note on an open referral.
#[utoipa::path(
    post,
    path = "/api/referrals/{id}/notes",
    tag = "referrals",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Referral id")),
    request_body = Note,
    responses((status = 200, body = ReferralView), (status = 400, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody))
)]
pub async fn note(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    Path(id): Path<ReferralId>,
    ApiJson(request): ApiJson<Note>,
) -> Result<ApiJson<ReferralView>, ApiError> {
    let text = request.text.trim();
    if !(1..=4000).contains(&text.chars().count()) {
        return Err(ApiError::bad_request("invalid_field", "text: 1 to 4000 characters"));
    }
    let sight = as_caseworker(&state, &principal, &id, &source).await?;
    let author = principal.account()?.id.clone();
    let audit = AuditEntry::new(&principal.actor(), "referral.noted", &id, serde_json::Value::Null, &source);
    if !state.store.add_referral_note(&id, &author, text, crate::unix_now(), &audit).await? {
        return Err(ApiError::Clash { code: "wrong_status", message: "the referral is closed".into() });
    }
    Ok(ApiJson(full_view(&state, &id, sight).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_use_the_alphabet_and_read_in_a_qr_code() {
        for _ in 0..100 {
            let code = new_code();
            assert_eq!(code.len(), CODE_LEN);
            assert!(code.bytes().all(|b| CODE_ALPHABET.contains(&b)), "{code}");
        }
        let svg = qr_svg("7K3M-9PQX").unwrap();
        assert!(svg.starts_with("<?xml") && svg.contains("<svg") && svg.contains("#000000"), "{svg}");
    }
}
