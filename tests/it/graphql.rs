//! graphql.extractor end to end: `osiris run` of examples/graphql (GraphQL -> DuckDB SQL ->
//! CSV) against a real GraphQL server, with the endpoint and token from a connection.

use crate::common::{Project, repo_root, rows};
use test_graphql_server::{BEARER_TOKEN, BackgroundServer, ServerOptions};

fn project(server: &BackgroundServer) -> (Project, Vec<(&'static str, String)>) {
    let project = Project::new();
    let example = repo_root().join("examples/graphql");
    for file in ["pipeline.yaml", "osiris_connections.yaml"] {
        project.write(file, std::fs::read(example.join(file)).unwrap());
    }
    let env = vec![
        ("GRAPHQL_ENDPOINT", server.endpoint("private")),
        ("GRAPHQL_TOKEN", BEARER_TOKEN.to_owned()),
    ];
    (project, env)
}

#[test]
fn example_pipeline_pages_through_graphql_into_sql_and_csv() {
    let server = BackgroundServer::start(ServerOptions {
        users: 250,
        ..ServerOptions::default()
    });
    let (project, env) = project(&server);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let ran = project.osiris_env(&["run", "pipeline.yaml"], &env);
    assert_eq!(ran.code, 0, "{}", ran.all());

    assert_eq!(server.hits("private").len(), 3, "250 users in pages of 100");
    let session = project.session();
    assert_eq!(
        rows(
            &session,
            "SELECT count(*), count(DISTINCT id), sum(json_array_length(tags)) FROM users"
        ),
        ["250|250|249"]
    );
    assert_eq!(
        String::from_utf8(project.read("output/users_by_city.csv")).unwrap(),
        "city,users,active_users,balance,tags\n\
         city0,25,25,3750.0,24\n\
         city1,25,0,3781.25,25\n\
         city2,25,25,3812.5,26\n\
         city3,25,0,3843.75,24\n\
         city4,25,25,3875.0,25\n\
         city5,25,0,3906.25,26\n\
         city6,25,25,3937.5,24\n\
         city7,25,0,3968.75,25\n\
         city8,25,25,4000.0,26\n\
         city9,25,0,4031.25,24\n"
    );

    // The token reached the server but no file and no output.
    assert!(!ran.all().contains(BEARER_TOKEN));
    for (path, bytes) in project.files(".osiris_sessions") {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(BEARER_TOKEN), "token leaked into {path}");
    }
    let doctor = project.osiris_env(&["connections", "doctor", "@graphql.api"], &env);
    assert_eq!(doctor.code, 0, "{}", doctor.all());
}

#[test]
fn a_wrong_token_fails_the_run_as_an_auth_error_without_a_table() {
    let server = BackgroundServer::start(ServerOptions::default());
    let (project, mut env) = project(&server);
    env[1].1 = "wrong-token-123".into();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let ran = project.osiris_env(&["run", "pipeline.yaml", "--json"], &env);
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert!(ran.all().contains("invalid credentials"), "{}", ran.all());
    assert!(
        ran.all().contains("\"auth\""),
        "error class auth: {}",
        ran.all()
    );
    assert!(!ran.all().contains("wrong-token-123"), "{}", ran.all());
    assert_eq!(server.hits("private").len(), 1, "401 is not retried");
    assert!(crate::common::tables(&project.session()).is_empty());
}
