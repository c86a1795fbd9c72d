"""`amazon-import`: S3 upload, then ImportImage (Packer's path) or ImportSnapshot + RegisterImage, then the AMI's
name, tags, launch permissions and copies to more regions. Options: factory/schema/cloud.py."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from factory.artifact.model import Artifact, Firmware
from factory.errors import FactoryError
from factory.post.base import PostContext, PostProcessor, Result
from factory.post.cloud.awsclient import Aws
from factory.post.cloud.common import render_name, result_artifact, upload_file
from factory.post.cloud.s3upload import upload
from factory.schema.types import parse_size_mib

BUILDER_ID = "packer.post-processor.amazon-import"
_FAILED = ("deleted", "deleting", "cancelled", "error")


@dataclass(frozen=True)
class Polling:
    delay: float
    attempts: int

    @classmethod
    def of(cls, config: Any) -> Polling:
        """Packer's aws_polling, overridden by AWS_POLL_DELAY_SECONDS / AWS_MAX_ATTEMPTS."""
        delay = float(os.environ.get("AWS_POLL_DELAY_SECONDS") or config.aws_polling.get("delay_seconds", 15))
        attempts = os.environ.get("AWS_MAX_ATTEMPTS") or config.aws_polling.get("max_attempts")
        return cls(delay, int(attempts) if attempts else max(1, int(3 * 3600 / max(delay, 0.001))))


def boot_mode(config: Any, artifact: Artifact) -> str:
    if config.boot_mode:
        return str(config.boot_mode)
    efi = config.architecture == "arm64" or artifact.hardware.firmware == Firmware.EFI
    return "uefi" if efi else "legacy-bios"


class AmazonImport(PostProcessor, type="amazon-import"):
    def process(self, config: Any, artifact: Artifact, ctx: PostContext) -> Result:
        aws = Aws(config)
        if not aws.verify:
            ctx.emit("amazon-import: TLS certificates of the AWS endpoints are not verified "
                     "(insecure_skip_tls_verify)")
        bucket, fmt = config.s3_bucket_name, config.format
        key = render_name(config.s3_key_name, {"Format": fmt, "BuildName": ctx.source_name}, "s3_key_name")
        s3 = aws.client("s3")
        extra: dict[str, str] = {}
        if config.s3_encryption:
            extra["ServerSideEncryption"] = config.s3_encryption
            if config.s3_encryption == "aws:kms" and config.s3_encryption_key:
                extra["SSEKMSKeyId"] = config.s3_encryption_key
        part = parse_size_mib(config.upload_part_size) << 20 if config.upload_part_size else None
        with upload_file(artifact, fmt, (f".{fmt}",), "amazon-import", ctx) as path, \
                aws.errors(f"uploading {path.name} to s3://{bucket}/{key}"):
            stats = upload(s3, path, bucket, key, part_size=part, concurrency=config.upload_concurrency,
                           extra_args=extra, emit=ctx.emit)
        ctx.emit(f"Uploaded {path.name} to s3://{bucket}/{key}: {stats.sent_bytes} bytes in {stats.sent_parts} "
                 f"part(s) sent, {stats.resumed_parts} part(s) already there")
        try:
            importer = _Importer(aws, config, ctx, Polling.of(config))
            ami = importer.run(bucket, key, boot_mode(config, artifact))
            amis = {aws.region: ami}
            importer.finish(aws.region, ami)
            for region in config.ami_regions:
                if region != aws.region:
                    amis[region] = importer.copy(ami, region)
        finally:
            if not config.skip_clean:
                with aws.errors(f"deleting s3://{bucket}/{key}"):
                    s3.delete_object(Bucket=bucket, Key=key)
        ident = ",".join(f"{r}:{a}" for r, a in sorted(amis.items()))
        ctx.emit("AMIs were created:\n" + "".join(f"{r}: {a}\n" for r, a in sorted(amis.items())).rstrip())
        state = {"amis": ident, "region": aws.region, "s3_object": f"s3://{bucket}/{key}"}
        return Result(result_artifact(BUILDER_ID, artifact, ident, state), keep_input=False)


class _Importer:
    """The EC2 half: one import, then what makes the AMI the user asked for."""

    def __init__(self, aws: Aws, config: Any, ctx: PostContext, polling: Polling) -> None:
        self.aws, self.config, self.ctx, self.polling = aws, config, ctx, polling
        self.ec2 = aws.client("ec2")

    def run(self, bucket: str, key: str, mode: str) -> str:
        c = self.config
        disk = {"Format": c.format.upper() if c.format != "ova" else "OVA",
                "UserBucket": {"S3Bucket": bucket, "S3Key": key}}
        common: dict[str, Any] = {"Encrypted": c.ami_encrypt}
        if c.ami_encrypt and c.ami_kms_key:
            common["KmsKeyId"] = c.ami_kms_key
        if c.role_name:
            common["RoleName"] = c.role_name
        if c.import_method == "import-snapshot":
            with self.aws.errors("starting ImportSnapshot"):
                task = self.ec2.import_snapshot(DiskContainer=disk, **common)["ImportTaskId"]
            snapshot = self._wait(task, self._snapshot_task, "SnapshotId")
            return self._register(snapshot, mode)
        args = dict(common, DiskContainers=[disk], Architecture=c.architecture, BootMode=mode)
        if c.platform:
            args["Platform"] = c.platform
        if c.license_type:
            self.ctx.emit(f"Setting license type to '{c.license_type}'")
            args["LicenseType"] = c.license_type
        with self.aws.errors("starting ImportImage"):
            task = self.ec2.import_image(**args)["ImportTaskId"]
        ami = self._wait(task, self._image_task, "ImageId")
        if c.ami_name:   # an imported AMI's name is AWS's; Packer renames by copying, then drops the original
            renamed = self._copy_to(self.ec2, ami, self.aws.region, c.ami_name)
            with self.aws.errors(f"deregistering the intermediate AMI {ami}"):
                self.ec2.deregister_image(ImageId=ami)
            ami = renamed
        return ami

    def _image_task(self, task: str) -> dict[str, Any]:
        resp = self.ec2.describe_import_image_tasks(ImportTaskIds=[task])
        return dict(resp["ImportImageTasks"][0])

    def _snapshot_task(self, task: str) -> dict[str, Any]:
        resp = self.ec2.describe_import_snapshot_tasks(ImportTaskIds=[task])
        return dict(resp["ImportSnapshotTasks"][0]["SnapshotTaskDetail"])

    def _wait(self, task: str, describe: Callable[[str], dict[str, Any]], field: str) -> str:
        """Poll the task until completed; its StatusMessage is shown as AWS wrote it, on progress and failure."""
        self.ctx.emit(f"Started import task {task}; waiting for it to complete (may take a while)")
        shown = None
        for _ in range(self.polling.attempts):
            with self.aws.errors(f"describing import task {task}"):
                detail = describe(task)
            status, message = detail.get("Status", ""), detail.get("StatusMessage", "")
            if status == "completed":
                self.ctx.emit(f"Import task {task} complete")
                return str(detail[field])
            if status in _FAILED:
                raise FactoryError(f"amazon-import: import task {task} failed with status message: {message}",
                                   hint="see https://docs.aws.amazon.com/vm-import/latest/userguide/"
                                   "troubleshooting.html for what the message means")
            if (status, message) != shown:
                progress = f", {detail['Progress']}%" if detail.get("Progress") else ""
                self.ctx.emit(f"Import task {task}: {status}{': ' + message if message else ''}{progress}")
                shown = (status, message)
            time.sleep(self.polling.delay)
        raise FactoryError(f"amazon-import: import task {task} did not complete in {self.polling.attempts} polls",
                           hint="raise aws_polling.max_attempts (or AWS_MAX_ATTEMPTS)")

    def _register(self, snapshot: str, mode: str) -> str:
        c = self.config
        name = c.ami_name or f"factory-{self.ctx.source_name}-{int(time.time())}"
        args: dict[str, Any] = {
            "Name": name, "Architecture": c.architecture, "RootDeviceName": c.root_device_name,
            "VirtualizationType": "hvm", "EnaSupport": c.ena_support, "BootMode": mode,
            "BlockDeviceMappings": [{"DeviceName": c.root_device_name,
                                     "Ebs": {"SnapshotId": snapshot, "DeleteOnTermination": True,
                                             "VolumeType": "gp3"}}]}
        if c.imds_support:
            args["ImdsSupport"] = c.imds_support
        if c.ami_description:
            args["Description"] = c.ami_description
        with self.aws.errors(f"registering an AMI from snapshot {snapshot}"):
            ami = str(self.ec2.register_image(**args)["ImageId"])
        self.ctx.emit(f"Registered AMI {ami} ({name}) from snapshot {snapshot}")
        return ami

    def _copy_to(self, ec2: Any, ami: str, region: str, name: str) -> str:
        c = self.config
        args: dict[str, Any] = {"SourceImageId": ami, "SourceRegion": self.aws.region, "Name": name}
        if c.ami_description:
            args["Description"] = c.ami_description
        if c.ami_encrypt:
            args["Encrypted"] = True
            if c.ami_kms_key:
                args["KmsKeyId"] = c.ami_kms_key
        with self.aws.errors(f"copying {ami} to {region}"):
            new = str(ec2.copy_image(**args)["ImageId"])
        self.ctx.emit(f"Copying {ami} to {region} as {new}; waiting for it to become available")
        self._available(ec2, new)
        return new

    def _available(self, ec2: Any, ami: str) -> dict[str, Any]:
        for _ in range(self.polling.attempts):
            with self.aws.errors(f"describing {ami}"):
                images = ec2.describe_images(ImageIds=[ami])["Images"]
            state = images[0]["State"] if images else "missing"
            if state == "available":
                return dict(images[0])
            if state in ("failed", "error", "deregistered", "missing"):
                reason = images[0].get("StateReason", {}).get("Message", "") if images else ""
                raise FactoryError(f"amazon-import: AMI {ami} is {state}{': ' + reason if reason else ''}")
            time.sleep(self.polling.delay)
        raise FactoryError(f"amazon-import: AMI {ami} did not become available",
                           hint="raise aws_polling.max_attempts (or AWS_MAX_ATTEMPTS)")

    def copy(self, ami: str, region: str) -> str:
        ec2 = self.aws.client("ec2", region)
        name = self._available(self.ec2, ami).get("Name", ami)
        new = self._copy_to(ec2, ami, region, str(name))
        self.finish(region, new, ec2)
        return new

    def finish(self, region: str, ami: str, ec2: Any = None) -> None:
        """Tags on the AMI and its snapshots, description, IMDS, launch permissions (Packer's order)."""
        ec2, c = ec2 or self.ec2, self.config
        image = self._available(ec2, ami)
        with self.aws.errors(f"setting the attributes of {ami} in {region}"):
            if c.tags:
                snaps = [m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", [])
                         if m.get("Ebs", {}).get("SnapshotId")]
                ec2.create_tags(Resources=[ami, *snaps], Tags=[{"Key": k, "Value": v} for k, v in c.tags.items()])
                self.ctx.emit(f"Tagged {ami} and snapshot(s) {', '.join(snaps) or '-'} in {region}")
            if c.ami_description and image.get("Description") != c.ami_description:
                ec2.modify_image_attribute(ImageId=ami, Description={"Value": c.ami_description})
            if c.imds_support and c.import_method == "import-image":
                ec2.modify_image_attribute(ImageId=ami, ImdsSupport={"Value": c.imds_support})
            adds = ([{"UserId": u} for u in c.ami_users] + [{"Group": g} for g in c.ami_groups]
                    + [{"OrganizationArn": a} for a in c.ami_org_arns]
                    + [{"OrganizationalUnitArn": a} for a in c.ami_ou_arns])
            if adds:
                ec2.modify_image_attribute(ImageId=ami, LaunchPermission={"Add": adds})
                self.ctx.emit(f"Shared {ami} in {region} with {len(adds)} principal(s)")
