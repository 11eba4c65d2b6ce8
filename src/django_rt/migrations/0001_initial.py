from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="OutboxEntry",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("created", models.DateTimeField()),
                ("origin", models.CharField(max_length=32)),
                ("changes", models.TextField()),
            ],
            options={
                "verbose_name": "change feed outbox entry",
                "verbose_name_plural": "change feed outbox entries",
                "db_table": "django_rt_outbox",
            },
        ),
    ]
