//! Secret loading from SSM Parameter Store (SecureString, with decryption) on the emulator.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use aws_sdk_ssm::types::ParameterType;
use ooni_adapters::SecretError;

#[tokio::test]
async fn a_secret_is_read_from_the_ssm_parameter_named_by_the_env() {
    let aws = common::aws().await;
    let parameter = format!("/ooni/test/{}", common::unique("jwt"));
    aws.ssm
        .put_parameter()
        .name(&parameter)
        .value("s3cr3t-value")
        .r#type(ParameterType::SecureString)
        .send()
        .await
        .expect("put parameter");
    let lookup = |k: &str| (k == "OONI_JWT_SECRET_SSM_PARAMETER").then(|| parameter.clone());
    let secret = aws
        .load_secret_with("OONI_JWT_SECRET", lookup)
        .await
        .expect("load");
    assert_eq!(secret.expose(), "s3cr3t-value");
    assert!(!format!("{secret:?} {secret}").contains("s3cr3t"));
}

#[tokio::test]
async fn a_missing_ssm_parameter_is_reported_by_name() {
    let aws = common::aws().await;
    let parameter = format!("/ooni/test/{}", common::unique("absent"));
    let lookup = |k: &str| (k == "X_SSM_PARAMETER").then(|| parameter.clone());
    let err = aws
        .load_secret_with("X", lookup)
        .await
        .expect_err("no such parameter");
    assert!(
        matches!(err, SecretError::ParameterNotFound { .. }),
        "{err}"
    );
    assert!(err.to_string().contains(&parameter));
}
