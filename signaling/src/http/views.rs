//! What the API shows of stored records. Each view decides what leaves the
//! server; a record is never serialized directly.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{Language, Role, Topic};
use crate::store::{
    AccountRecord, AppointmentRecord, CaseworkerRow, ConsultationRecord, NoteRow, OfficeCounts, OfficeNames,
    OfficeRecord, ReferralRecord, RegionRecord, TerminalRecord,
};

/// An instant as RFC 3339 in UTC (`2026-12-01T06:00:00Z`).
pub fn rfc3339(at: i64) -> String {
    jiff::Timestamp::from_second(at).map(|t| t.to_string()).unwrap_or_default()
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct AppointmentView {
    pub id: String,
    pub terminal_id: String,
    pub region_id: String,
    pub lawyer_id: String,
    pub language: String,
    pub topic: String,
    #[schema(example = "2026-12-01T06:00:00Z")]
    pub start: String,
    pub end: String,
    /// `booked`, `cancelled`, `completed` or `no_show`.
    pub status: String,
    pub consultation_id: Option<String>,
    /// `kiosk`, or `phone`: the lawyer calls the resident (`POST /api/appointments/{id}/callback`).
    pub channel: String,
    /// A phone appointment's number, masked (`138****5678`); never whole here.
    #[schema(example = "138****5678")]
    pub phone: Option<String>,
}

impl From<&AppointmentRecord> for AppointmentView {
    fn from(a: &AppointmentRecord) -> Self {
        AppointmentView {
            id: a.id.to_string(),
            terminal_id: a.terminal_id.to_string(),
            region_id: a.region_id.to_string(),
            lawyer_id: a.lawyer_id.to_string(),
            language: a.language.clone(),
            topic: a.topic.clone(),
            start: rfc3339(a.starts_at),
            end: rfc3339(a.ends_at),
            status: a.status.clone(),
            consultation_id: a.consultation_id.as_ref().map(ToString::to_string),
            channel: a.channel.clone(),
            phone: a.phone_number.as_deref().map(crate::phone::mask_number),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    pub id: String,
    pub username: String,
    pub display_name: String,
    #[schema(example = "Asia/Shanghai")]
    pub time_zone: String,
    pub active: bool,
    pub roles: Vec<Role>,
    pub languages: Vec<Language>,
    pub topics: Vec<Topic>,
    /// Regions a coordinator answers for.
    pub regions: Vec<String>,
}

impl From<&AccountRecord> for AccountView {
    fn from(a: &AccountRecord) -> Self {
        AccountView {
            id: a.id.to_string(),
            username: a.username.clone(),
            display_name: a.display_name.clone(),
            time_zone: a.time_zone.clone(),
            active: a.active,
            roles: a.roles.clone(),
            languages: a.languages.clone(),
            topics: a.topics.clone(),
            regions: a.regions.iter().map(ToString::to_string).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegionView {
    pub id: String,
    pub name: String,
    pub parent_id: Option<String>,
    pub time_zone: String,
}

impl From<&RegionRecord> for RegionView {
    fn from(r: &RegionRecord) -> Self {
        RegionView {
            id: r.id.to_string(),
            name: r.name.clone(),
            parent_id: r.parent_id.as_ref().map(ToString::to_string),
            time_zone: r.time_zone.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TerminalStatus {
    /// Registered; waiting for a kiosk to enroll with its code.
    Pending,
    Enrolled,
    Revoked,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TerminalView {
    pub id: String,
    pub name: String,
    pub township: String,
    pub region_id: String,
    pub languages: Vec<Language>,
    pub status: TerminalStatus,
    pub enrolled_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl From<&TerminalRecord> for TerminalView {
    fn from(t: &TerminalRecord) -> Self {
        let status = if t.revoked_at.is_some() {
            TerminalStatus::Revoked
        } else if t.credential_id.is_some() {
            TerminalStatus::Enrolled
        } else {
            TerminalStatus::Pending
        };
        TerminalView {
            id: t.id.to_string(),
            name: t.name.clone(),
            township: t.township.clone(),
            region_id: t.region_id.to_string(),
            languages: t.languages.clone(),
            status,
            enrolled_at: t.enrolled_at,
            revoked_at: t.revoked_at,
        }
    }
}

/// A consultation as one caller may see it. Fields the caller may not see are
/// absent: participants see everything; the terminal sees what happened but not
/// who advised or what was written; coordinators see everything but the record's text.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsultationView {
    pub id: String,
    pub region_id: String,
    pub topic: String,
    pub language: String,
    /// `active`, `wrap_up` or `ended`.
    pub status: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub outcome: Option<String>,
    pub rating: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminal_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lawyer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interpreter_id: Option<String>,
    /// The lawyer's written record: participants only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The caller (on the hotline) may be called back: participants only
    /// (`POST /api/consultations/{id}/callback`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub callback: bool,
}

/// How much of a consultation a caller sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Participant,
    Terminal,
    Coordinator,
}

impl ConsultationView {
    pub fn new(c: &ConsultationRecord, visibility: Visibility) -> Self {
        let participant = visibility == Visibility::Participant;
        let staff = visibility != Visibility::Terminal;
        ConsultationView {
            id: c.id.to_string(),
            region_id: c.region_id.to_string(),
            topic: c.topic.clone(),
            language: c.language.clone(),
            status: c.status.clone(),
            started_at: c.started_at,
            ended_at: c.ended_at,
            outcome: c.outcome.clone(),
            rating: c.rating,
            terminal_id: staff.then(|| c.terminal_id.to_string()),
            lawyer_id: staff.then(|| c.lawyer_id.to_string()),
            interpreter_id: c.interpreter_id.as_ref().filter(|_| staff).map(ToString::to_string),
            summary: if participant { c.summary.clone() } else { None },
            callback: participant && c.callback,
        }
    }
}

/// A region's receiving office, with its caseworkers.
#[derive(Debug, Serialize, ToSchema)]
pub struct OfficeView {
    pub id: String,
    pub region_id: String,
    /// `legal_aid`, `mediation`, or another configured code.
    pub service: String,
    pub name: String,
    /// Its name in the languages its residents read, by language code.
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub names: OfficeNames,
    pub decision_days: i64,
    pub caseworkers: Vec<CaseworkerView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CaseworkerView {
    pub id: String,
    pub display_name: String,
}

impl OfficeView {
    /// `caseworkers` may hold other offices' too: only this one's are kept.
    pub fn new(o: &OfficeRecord, caseworkers: &[CaseworkerRow]) -> Self {
        OfficeView {
            id: o.id.to_string(),
            region_id: o.region_id.to_string(),
            service: o.service.clone(),
            name: o.name.clone(),
            names: o.names.clone(),
            decision_days: o.decision_days,
            caseworkers: caseworkers
                .iter()
                .filter(|c| c.office_id == o.id)
                .map(|c| CaseworkerView {
                    id: c.account_id.to_string(),
                    display_name: c.display_name.clone(),
                })
                .collect(),
        }
    }
}

/// A referral's reference code as residents see it: `XXXX-XXXX`.
pub fn reference_code(code: &str) -> String {
    if code.len() == 8 && code.is_ascii() {
        format!("{}-{}", &code[..4], &code[4..])
    } else {
        code.to_owned()
    }
}

/// How much of a referral a caller sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferralSight {
    /// A caseworker of its office: everything, notes included.
    Caseworker,
    /// The lawyer who proposed it: the matter they wrote, not the resident's contact.
    Lawyer,
    /// A coordinator of its region, an admin: where it stands, not what it is about.
    Overseer,
}

/// A referral as one caller may see it (`ReferralSight`): fields the caller may
/// not see are null.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReferralView {
    pub id: String,
    /// `XXXX-XXXX`, once the resident agreed.
    pub code: Option<String>,
    pub consultation_id: Option<String>,
    pub region_id: String,
    pub office_id: String,
    pub office: String,
    pub service: String,
    pub topic: String,
    pub language: String,
    /// The matter in the lawyer's words: caseworkers and the lawyer.
    pub matter: Option<String>,
    /// The contact the resident chose to give: caseworkers only.
    pub contact: Option<String>,
    /// `proposed` (the lawyer only sees these), `new`, `accepted` or `closed`.
    pub status: String,
    pub outcome: Option<String>,
    pub assignee_id: Option<String>,
    pub assignee: Option<String>,
    pub proposed_at: i64,
    pub consented_at: Option<i64>,
    /// When the office should have decided: consent plus its `decision_days`.
    pub due_at: Option<i64>,
    pub closed_at: Option<i64>,
    /// Open past `due_at`.
    pub overdue: bool,
    /// Caseworkers only, and only when one referral is read.
    pub notes: Option<Vec<NoteView>>,
    /// The office's caseworkers, to assign it to: caseworkers only, when one referral is read.
    pub caseworkers: Option<Vec<CaseworkerView>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NoteView {
    pub author: String,
    pub at: i64,
    pub text: String,
}

impl ReferralView {
    pub fn new(r: &ReferralRecord, sight: ReferralSight, now: i64) -> Self {
        let caseworker = sight == ReferralSight::Caseworker;
        ReferralView {
            id: r.id.to_string(),
            code: r.code.as_deref().map(reference_code),
            consultation_id: (sight != ReferralSight::Overseer).then(|| r.consultation_id.to_string()),
            region_id: r.region_id.to_string(),
            office_id: r.office_id.to_string(),
            office: r.office_name.clone(),
            service: r.service.clone(),
            topic: r.topic.clone(),
            language: r.language.clone(),
            matter: (sight != ReferralSight::Overseer).then(|| r.matter.clone()),
            contact: if caseworker { r.contact.clone() } else { None },
            status: r.status.clone(),
            outcome: r.outcome.clone(),
            assignee_id: r.assignee_id.as_ref().map(ToString::to_string),
            assignee: r.assignee_name.clone(),
            proposed_at: r.proposed_at,
            consented_at: r.consented_at,
            due_at: r.due_at,
            closed_at: r.closed_at,
            overdue: r.overdue(now),
            notes: None,
            caseworkers: None,
        }
    }

    /// What only its office's caseworkers see: its notes, and who they may assign it to.
    pub fn for_caseworkers(mut self, notes: &[NoteRow], caseworkers: &[CaseworkerRow]) -> Self {
        self.notes = Some(
            notes
                .iter()
                .map(|n| NoteView { author: n.author_name.clone(), at: n.at, text: n.text.clone() })
                .collect(),
        );
        self.caseworkers = Some(
            caseworkers
                .iter()
                .filter(|c| c.office_id.as_str() == self.office_id)
                .map(|c| CaseworkerView {
                    id: c.account_id.to_string(),
                    display_name: c.display_name.clone(),
                })
                .collect(),
        );
        self
    }
}

/// What any kiosk shows of a referral, given its code: where it stands, and
/// nothing about the person or the matter.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReferralStatusView {
    #[schema(example = "7K3M-9PQX")]
    pub code: String,
    pub service: String,
    pub office: String,
    /// The office's name in the languages its residents read, by language code.
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub office_names: OfficeNames,
    /// `new`, `accepted` or `closed`.
    pub status: String,
    pub outcome: Option<String>,
    pub updated_at: i64,
}

impl From<&ReferralRecord> for ReferralStatusView {
    fn from(r: &ReferralRecord) -> Self {
        ReferralStatusView {
            code: r.code.as_deref().map(reference_code).unwrap_or_default(),
            service: r.service.clone(),
            office: r.office_name.clone(),
            office_names: r.office_names.clone(),
            status: r.status.clone(),
            outcome: r.outcome.clone(),
            updated_at: r.updated_at,
        }
    }
}

/// One office's referrals by status.
#[derive(Debug, Serialize, ToSchema)]
pub struct OfficeCountsView {
    pub office_id: String,
    pub office: String,
    pub region_id: String,
    pub service: String,
    pub new: i64,
    pub accepted: i64,
    /// Open past their due time.
    pub overdue: i64,
    pub closed: i64,
}

impl From<&OfficeCounts> for OfficeCountsView {
    fn from(c: &OfficeCounts) -> Self {
        OfficeCountsView {
            office_id: c.office_id.to_string(),
            office: c.office_name.clone(),
            region_id: c.region_id.to_string(),
            service: c.service.clone(),
            new: c.new,
            accepted: c.accepted,
            overdue: c.overdue,
            closed: c.closed,
        }
    }
}
