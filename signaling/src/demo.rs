//! Demo data for `cloudlaw serve --demo`: enough to try every path by hand.
//!
//! Seeding is idempotent: accounts that exist are left as they are, so a demo
//! data directory can be restarted. The demo passwords are public, which is why
//! [`crate::config::Config::validate`] keeps `--demo` on loopback addresses.

use crate::domain::{Language, Role, Topic};
use crate::ids::RegionId;
use crate::password;
use crate::store::{AuditEntry, NewAccount, NewTerminal, RegionRecord, Store, StoreError, TeamLinks};
use crate::unix_now;

pub const DEMO_PASSWORD: &str = "demo-pass";
pub const DEMO_TERMINAL_CODE: &str = "DEMO-TERMINAL-1";
pub const DEMO_REGION_ID: &str = "demo-garze";
pub const DEMO_TEAM_NAME: &str = "援藏律师服务团 Aid-Tibet Lawyer Service Team (demo)";
const DEMO_TERMINAL_NAME: &str = "新都桥镇公共法律服务站 Xinduqiao township legal service station";
const TIME_ZONE: &str = "Asia/Shanghai";

struct DemoAccount {
    username: &'static str,
    display_name: &'static str,
    roles: &'static [Role],
    languages: &'static [&'static str],
    all_topics: bool,
    on_duty_always: bool,
}

const ACCOUNTS: &[DemoAccount] = &[
    DemoAccount {
        username: "demo-lawyer",
        display_name: "卓玛律师 Lawyer Drolma (demo)",
        roles: &[Role::Lawyer],
        languages: &["bo", "zh"],
        all_topics: true,
        on_duty_always: true,
    },
    DemoAccount {
        username: "demo-lawyer-2",
        display_name: "王律师 Lawyer Wang (demo)",
        roles: &[Role::Lawyer],
        languages: &["zh"],
        all_topics: true,
        on_duty_always: true,
    },
    DemoAccount {
        username: "demo-interpreter",
        display_name: "次仁翻译 Interpreter Tsering (demo)",
        roles: &[Role::Interpreter],
        languages: &["bo", "zh"],
        all_topics: false,
        on_duty_always: true,
    },
    DemoAccount {
        username: "demo-admin",
        display_name: "管理员 Administrator (demo)",
        roles: &[Role::Admin],
        languages: &["zh", "en"],
        all_topics: false,
        on_duty_always: false,
    },
    DemoAccount {
        username: "demo-coordinator",
        display_name: "李协调员 Coordinator Li (demo)",
        roles: &[Role::Coordinator],
        languages: &["zh"],
        all_topics: false,
        on_duty_always: false,
    },
    DemoAccount {
        username: "demo-caseworker",
        display_name: "张办案员 Caseworker Zhang, legal aid (demo)",
        roles: &[Role::Caseworker],
        languages: &["zh"],
        all_topics: false,
        on_duty_always: false,
    },
    DemoAccount {
        username: "demo-caseworker-2",
        display_name: "格桑调解员 Mediator Kelsang (demo)",
        roles: &[Role::Caseworker],
        languages: &["bo", "zh"],
        all_topics: false,
        on_duty_always: false,
    },
];

/// The demo region's receiving offices: service, name, its name in Tibetan,
/// decision days, and the demo caseworker of each.
const OFFICES: &[(&str, &str, &str, i64, &str)] = &[
    (
        "legal_aid",
        "甘孜州法律援助中心 Garzê Legal Aid Centre (demo)",
        "དཀར་མཛེས་ཁུལ་ཁྲིམས་ཐོག་རོགས་རམ་ལྟེ་གནས། (demo)",
        7,
        "demo-caseworker",
    ),
    (
        "mediation",
        "新都桥镇人民调解委员会 Xinduqiao People's Mediation Committee (demo)",
        "ཞིན་དུ་ཆའོ་གྲོང་རྡལ་མི་དམངས་བར་འདུམ་ཨུ་ཡོན་ལྷན་ཁང་། (demo)",
        15,
        "demo-caseworker-2",
    ),
];

/// Why seeding failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot hash a demo secret: {0}")]
    Hash(#[from] crate::password::HashError),
}

/// What seeding did, for the start-up log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Seeded {
    pub accounts_created: usize,
}

/// Seeds the demo region, team, accounts, duty hours, referral offices and terminal.
pub async fn seed(store: &Store) -> Result<Seeded, DemoError> {
    let mut seeded = Seeded::default();
    let region = RegionId::from(DEMO_REGION_ID);
    store
        .ensure_region(&RegionRecord {
            id: region.clone(),
            name: "甘孜藏族自治州 Garzê Tibetan Autonomous Prefecture (demo)".into(),
            parent_id: None,
            time_zone: TIME_ZONE.into(),
        })
        .await?;
    let team_id = match store.teams_for_region(&region).await?.into_iter().next() {
        Some(team) => team.id,
        None => {
            let regions = [region.clone()];
            let links = TeamLinks { regions: Some(&regions), ..TeamLinks::default() };
            let audit = AuditEntry {
                actor: "system".into(),
                action: "team.created".into(),
                detail: serde_json::json!({"name": DEMO_TEAM_NAME, "demo": true}),
                ..AuditEntry::default()
            };
            store.create_team(DEMO_TEAM_NAME, links, &audit).await?
        }
    };

    for demo in ACCOUNTS {
        if store.account_by_username(demo.username).await?.is_some() {
            continue;
        }
        let password_hash = password::hash_blocking(DEMO_PASSWORD.into()).await?;
        let id = store
            .create_account(
                &NewAccount {
                    username: demo.username.into(),
                    display_name: demo.display_name.into(),
                    password_hash,
                    time_zone: TIME_ZONE.into(),
                    roles: demo.roles.to_vec(),
                    languages: demo.languages.iter().filter_map(|l| Language::parse(l).ok()).collect(),
                    topics: if demo.all_topics { Topic::ALL.to_vec() } else { Vec::new() },
                },
                &[],
                &crate::store::AuditEntry::system("account.created"),
            )
            .await?;
        if demo.on_duty_always {
            for weekday in 0..7 {
                store.add_weekly_availability(&id, weekday, 0, 24 * 60).await?;
            }
        }
        if demo.username == "demo-lawyer" {
            store.add_team_member(&team_id, &id).await?;
        }
        if demo.roles.contains(&Role::Coordinator) {
            store.assign_coordinator_region(&id, &region).await?;
        }
        seeded.accounts_created += 1;
    }

    if store.offices_in_region(&region).await?.is_empty() {
        for (service, name, tibetan, days, caseworker) in OFFICES {
            let names = crate::store::OfficeNames([("bo".to_owned(), (*tibetan).to_owned())].into());
            let created = crate::store::AuditEntry::system("office.created");
            let office = store.create_office(&region, service, name, &names, *days, &created).await?;
            let caseworkers: Vec<_> =
                store.account_by_username(caseworker).await?.map(|a| a.id).into_iter().collect();
            let updated = crate::store::AuditEntry::system("office.updated");
            store.update_office(&office, name, &names, *days, &caseworkers, &updated).await?;
        }
    }

    if store.terminals_in_region(&region).await?.is_empty() {
        let code_hash = password::fingerprint(DEMO_TERMINAL_CODE);
        store
            .create_terminal(
                &NewTerminal {
                    name: DEMO_TERMINAL_NAME.into(),
                    township: "新都桥镇 Xinduqiao".into(),
                    region_id: region.clone(),
                    languages: ["bo", "zh", "en"].iter().filter_map(|l| Language::parse(l).ok()).collect(),
                    enrollment_code_hash: code_hash,
                    // Long enough for any demo; a real code expires within days.
                    enrollment_expires_at: unix_now() + 10 * 365 * 24 * 3600,
                },
                &crate::store::AuditEntry::system("terminal.registered"),
            )
            .await?;
    }
    Ok(seeded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    #[tokio::test]
    async fn seeds_once_with_the_promised_people() {
        let (store, _dir) = testing::store().await;
        assert_eq!(seed(&store).await.unwrap().accounts_created, 7);
        assert_eq!(seed(&store).await.unwrap().accounts_created, 0, "idempotent");

        let lawyer = store.account_by_username("demo-lawyer").await.unwrap().unwrap();
        let langs: Vec<_> = lawyer.languages.iter().map(|l| l.as_str()).collect();
        assert_eq!(langs, ["bo", "zh"]);
        assert_eq!(lawyer.topics.len(), Topic::ALL.len());
        assert_eq!(store.weekly_availability_count(&lawyer.id).await.unwrap(), 7);

        let lawyer2 = store.account_by_username("demo-lawyer-2").await.unwrap().unwrap();
        assert_eq!(lawyer2.languages.iter().map(|l| l.as_str()).collect::<Vec<_>>(), ["zh"]);
        let interpreter = store.account_by_username("demo-interpreter").await.unwrap().unwrap();
        assert_eq!(interpreter.roles, vec![Role::Interpreter]);
        let coordinator = store.account_by_username("demo-coordinator").await.unwrap().unwrap();
        assert_eq!(coordinator.roles, vec![Role::Coordinator]);

        let teams = store.teams_for_region(&DEMO_REGION_ID.into()).await.unwrap();
        assert_eq!(teams.len(), 1);
        assert_eq!(store.team_member_usernames(&teams[0].id).await.unwrap(), ["demo-lawyer"]);
        assert_eq!(store.terminals_in_region(&DEMO_REGION_ID.into()).await.unwrap().len(), 1);

        let offices = store.offices_in_region(&DEMO_REGION_ID.into()).await.unwrap();
        assert_eq!(
            offices.iter().map(|o| o.service.as_str()).collect::<Vec<_>>(),
            ["legal_aid", "mediation"]
        );
        let caseworker = store.account_by_username("demo-caseworker").await.unwrap().unwrap();
        assert!(caseworker.has_role(Role::Caseworker));
        assert_eq!(store.offices_of_caseworker(&caseworker.id).await.unwrap(), offices[..1]);
    }
}
