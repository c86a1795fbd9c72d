"""boto3 sessions and clients for amazon-import, and AWS errors turned into messages a user can act on.

boto3's own chain decides credentials, region and endpoints (AWS_* variables, profiles, AWS_ENDPOINT_URL_S3 /
AWS_ENDPOINT_URL_EC2, `endpoint_url` in the config file); the options only override it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from factory.errors import FactoryError

AUTH_CODES = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AuthFailure", "InvalidClientTokenId",
              "UnrecognizedClientException", "ExpiredToken", "ExpiredTokenException", "AccessDenied",
              "UnauthorizedOperation")

SEARCHED = ("the access_key/secret_key options, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, the shared credentials "
            "file ({creds}) and config file ({config}) for profile {profile!r}, web identity (AWS_ROLE_ARN), "
            "container credentials (AWS_CONTAINER_CREDENTIALS_*) and the instance metadata service")


class Aws:
    """The session of one amazon-import run, and where its credentials came from (for error messages)."""

    def __init__(self, config: Any) -> None:
        import boto3
        import botocore.config
        import botocore.session

        core = botocore.session.Session(profile=config.profile)
        if config.shared_credentials_file:
            core.set_config_variable("credentials_file", os.path.expanduser(config.shared_credentials_file))
        # boto3 reads AWS_DEFAULT_REGION; AWS_REGION is what the other SDKs (and Packer) read.
        region = config.region or core.get_config_variable("region") or os.environ.get("AWS_REGION")
        self.session = boto3.session.Session(aws_access_key_id=config.access_key,
                                             aws_secret_access_key=config.secret_key,
                                             aws_session_token=config.token, region_name=region,
                                             botocore_session=core)
        self.profile = config.profile or os.environ.get("AWS_PROFILE", "default")
        self.client_config = botocore.config.Config(user_agent_extra="factory")
        self.verify = not config.insecure_skip_tls_verify
        if not self.verify:
            import warnings

            from urllib3.exceptions import InsecureRequestWarning

            # Asked for: the post-processor says it once; urllib3 would print a Python warning on stderr for it.
            warnings.filterwarnings("ignore", category=InsecureRequestWarning)
        self.ec2_endpoint = config.custom_endpoint_ec2
        if config.assume_role:
            self._assume(config.assume_role)
        if not self.session.region_name:
            raise FactoryError("amazon-import: no AWS region given",
                               hint="set region, AWS_REGION, or region in the profile's config")
        self.region: str = self.session.region_name

    def _assume(self, role: dict[str, str]) -> None:
        import boto3

        args: dict[str, Any] = {"RoleArn": role["role_arn"],
                                "RoleSessionName": role.get("session_name", "factory-amazon-import")}
        if "external_id" in role:
            args["ExternalId"] = role["external_id"]
        if "duration_seconds" in role:
            args["DurationSeconds"] = int(role["duration_seconds"])
        with self.errors("assuming role " + role["role_arn"]):
            creds = self.client("sts").assume_role(**args)["Credentials"]
        self.session = boto3.session.Session(
            aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"], region_name=self.session.region_name)
        self.source = f"the role {role['role_arn']} (assume_role)"

    def client(self, service: str, region: str | None = None) -> Any:
        endpoint = self.ec2_endpoint if service == "ec2" else None
        return self.session.client(service, region_name=region or self.session.region_name, endpoint_url=endpoint,
                                   verify=self.verify, config=self.client_config)

    def credential_source(self) -> str:
        if getattr(self, "source", None):
            return str(self.source)
        creds = self.session.get_credentials()
        method = getattr(creds, "method", None)
        core = self.session._session
        places = {"explicit": "the access_key/secret_key options",
                  "env": "the environment (AWS_ACCESS_KEY_ID)",
                  "shared-credentials-file": f"the shared credentials file "
                                             f"{core.get_config_variable('credentials_file')} "
                                             f"(profile {self.profile!r})",
                  "config-file": f"the config file {core.get_config_variable('config_file')} "
                                 f"(profile {self.profile!r})"}
        return places.get(str(method), f"boto3's {method} provider")

    def searched(self) -> str:
        core = self.session._session
        return SEARCHED.format(creds=core.get_config_variable("credentials_file"),
                               config=core.get_config_variable("config_file"), profile=self.profile)

    @contextlib.contextmanager
    def errors(self, what: str) -> Iterator[None]:
        """Turn boto3's exceptions during `what` into one FactoryError naming the cause."""
        import botocore.exceptions as bex

        try:
            yield
        except bex.NoCredentialsError:
            raise FactoryError(f"amazon-import: {what}: no AWS credentials found",
                               hint="looked in " + self.searched()) from None
        except bex.ClientError as exc:
            err = exc.response.get("Error", {})
            code, message = str(err.get("Code", "")), str(err.get("Message", ""))
            if code in AUTH_CODES:
                raise FactoryError(f"amazon-import: {what}: AWS rejected the credentials from "
                                   f"{self.credential_source()}: {code}: {message}",
                                   hint="check the key pair and its permissions (vmimport needs s3 and ec2 "
                                   "rights); credentials are looked for in " + self.searched()) from None
            if code == "NoSuchBucket":
                raise FactoryError(f"amazon-import: {what}: the S3 bucket does not exist ({message})",
                                   hint="create it in the import's region, or fix s3_bucket_name") from None
            raise FactoryError(f"amazon-import: {what}: {code}: {message}") from None
        except (bex.EndpointConnectionError, bex.ConnectTimeoutError) as exc:
            raise FactoryError(f"amazon-import: {what}: cannot reach the endpoint: {exc}",
                               hint="check custom_endpoint_ec2, AWS_ENDPOINT_URL_* and the network") from None
        except bex.BotoCoreError as exc:
            raise FactoryError(f"amazon-import: {what}: {exc}") from None
