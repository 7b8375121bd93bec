//! A database of its own for each test, on the PostgreSQL server `.ci/postgres` starts
//! (`M365_TEST_POSTGRES_URL`, `M365_TEST_POSTGRES_CA`). Without one, a test says so and is
//! skipped; in CI (`CI=true`) it fails instead.

use super::{PostgresStore, Target};

/// Whether the store's connections are encrypted (the server's own view).
pub(crate) async fn encrypted(store: &PostgresStore) -> bool {
    let client = store.pool.get().await.expect("a connection");
    let row = client
        .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
        .await
        .expect("pg_stat_ssl");
    row.get(0)
}

/// A fresh, empty database.
#[derive(Debug)]
pub(crate) struct TestDatabase {
    /// Where it is: verified TLS to the test server.
    pub(crate) target: Target,
}

impl TestDatabase {
    /// A new database on the test server, or `None` (and a line saying so) without one.
    pub(crate) async fn create(test: &str) -> Option<Self> {
        let Some(admin) = std::env::var("M365_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty()) else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{test}: CI=true but M365_TEST_POSTGRES_URL is not set: .ci/postgres starts the server"
            );
            eprintln!("{test}: skipped, no PostgreSQL (set M365_TEST_POSTGRES_URL; .ci/postgres starts one)");
            return None;
        };
        let ca = std::env::var("M365_TEST_POSTGRES_CA").expect("M365_TEST_POSTGRES_CA beside M365_TEST_POSTGRES_URL");
        let (base, _) = admin
            .rsplit_once('/')
            .expect("postgres://user:password@host:port/database");
        let name = format!("m365_test_{}", uuid::Uuid::new_v4().simple());
        let admin = Target::parse(&format!("{admin}?sslrootcert={ca}")).expect("a valid test URL");
        let tls = crate::tls::client_config(Some(ca.as_ref())).expect("the test CA");
        let tls = rustls_tokio_postgres::MakeRustlsConnect::new((*tls).clone());
        let (client, connection) = admin.config(None).connect(tls).await.expect("the test server answers");
        let connection = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("CREATE DATABASE");
        drop(client);
        let _ = connection.await;
        let target = Target::parse(&format!("{base}/{name}?sslrootcert={ca}")).expect("a valid test URL");
        Some(Self { target })
    }
}
