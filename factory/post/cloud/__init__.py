"""Cloud import post-processors. The SDKs (boto3, azure-*, google-cloud-*) are imported inside the functions that
call the clouds, so a build that uses none of these post-processors never loads them."""

from factory.post.cloud import aws, azure, gcp  # noqa: F401  (register implementations)
