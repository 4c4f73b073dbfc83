"""Exec history rows become jobs (contract 2.17): a public `job_…` id, a status and an end."""

import secrets

from django.db import migrations, models


def settle_existing(apps, schema_editor):
    # Rows from before jobs were finished dashboard execs: give each an id and its final status.
    ExecRecord = apps.get_model("containers", "ExecRecord")
    for row in ExecRecord.objects.all().only("id", "exit_code", "timed_out", "created_at"):
        if row.timed_out:
            status = "timed_out"
        else:
            status = "completed" if row.exit_code == 0 else "failed"
        ExecRecord.objects.filter(pk=row.pk).update(
            job_id=f"job_{secrets.token_hex(12)}", status=status, finished_at=row.created_at
        )


class Migration(migrations.Migration):
    dependencies = [
        ("containers", "0002_execrecord"),
    ]

    operations = [
        migrations.AddField(
            model_name="execrecord",
            name="job_id",
            field=models.CharField(max_length=32, null=True),
        ),
        migrations.AddField(
            model_name="execrecord",
            name="status",
            field=models.CharField(
                choices=[
                    ("running", "Running"),
                    ("completed", "Completed"),
                    ("failed", "Failed"),
                    ("timed_out", "Timed Out"),
                ],
                default="completed",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="execrecord",
            name="detached",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="execrecord",
            name="capture_output",
            field=models.BooleanField(default=True),
        ),
        migrations.AddField(
            model_name="execrecord",
            name="timeout_ms",
            field=models.IntegerField(default=30000),
        ),
        migrations.AddField(
            model_name="execrecord",
            name="owner",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AddField(
            model_name="execrecord",
            name="error",
            field=models.CharField(blank=True, max_length=500),
        ),
        migrations.AddField(
            model_name="execrecord",
            name="finished_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(settle_existing, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="execrecord",
            name="job_id",
            field=models.CharField(max_length=32, unique=True),
        ),
    ]
