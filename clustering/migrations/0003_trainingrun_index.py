from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("clustering", "0002_songlabel")]

    operations = [
        migrations.AddField(
            model_name="trainingrun", name="index_path", field=models.CharField(blank=True, max_length=512)
        ),
        migrations.AddField(
            model_name="trainingrun", name="index_sha256", field=models.CharField(blank=True, max_length=64)
        ),
    ]
