from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("clustering", "0004_playlists")]

    operations = [
        migrations.AddField(
            model_name="trainingrun", name="index_labels_current", field=models.BooleanField(default=False)
        ),
    ]
