"""When is a running run dead? Its heartbeat says so, except while its
labelling chunks (or its last step) wait in the broker's queue behind other
work: no process beats for them yet, and failing the run would throw away
work that is only waiting."""

import uuid
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from clustering import services
from clustering.models import TrainingRun
from clustering.tasks import label_chunk_task, train_run_task
from songs.background import broker_waiting
from tests.clustering.test_faults import dead_broker_url, running_run
from tests.conftest import _require

pytestmark = pytest.mark.django_db(transaction=True)


def heartbeat_age(run: TrainingRun) -> float:
    return (timezone.now() - TrainingRun.objects.get(pk=run.pk).heartbeat_at).total_seconds()


@pytest.fixture
def idle_queue(settings):
    """A queue of the test Redis broker that no worker consumes."""
    if not django_settings.CELERY_BROKER_URL.startswith("redis://"):
        _require("a Redis broker is needed (CELERY_BROKER_URL=redis://...)")
    import redis

    queue = f"idle-{uuid.uuid4().hex}"
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    yield queue, client
    client.delete(queue)
    client.close()


def test_a_run_whose_chunks_wait_in_the_queue_is_not_dead(idle_queue):
    queue, client = idle_queue
    run = running_run(heartbeat_age=600)  # labelling, no heartbeat for ten minutes
    label_chunk_task.apply_async((run.pk + 1000, 0, 10), queue=queue)  # another run's chunk
    train_run_task.apply_async((run.pk,), queue=queue)  # not a labelling message
    assert broker_waiting({label_chunk_task.name}, queue=queue) == [(label_chunk_task.name, [run.pk + 1000, 0, 10])]
    assert services.training_runs_fail_stale() == 1  # nothing of its own waits: dead
    assert TrainingRun.objects.get(pk=run.pk).status == "failed"

    waiting = running_run(heartbeat_age=600)
    label_chunk_task.apply_async((waiting.pk, 0, 10), queue=queue)
    assert services.training_runs_fail_stale() == 0
    assert TrainingRun.objects.get(pk=waiting.pk).status == "running"
    assert heartbeat_age(waiting) < 5  # refreshed: the run page shows it alive

    client.delete(queue)  # the chunk was lost (a broker restart without persistence)
    TrainingRun.objects.filter(pk=waiting.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=61))
    assert services.training_runs_fail_stale() == 1
    assert "no heartbeat" in TrainingRun.objects.get(pk=waiting.pk).error


def test_a_labelling_run_outlives_a_broker_that_cannot_be_asked(settings):
    settings.CELERY_BROKER_URL = dead_broker_url()
    settings.CELERY_TASK_ALWAYS_EAGER = False
    labelling = running_run(heartbeat_age=600)
    assert services.training_runs_fail_stale() == 0  # its chunks may wait in that broker
    assert TrainingRun.objects.get(pk=labelling.pk).status == "running"
    TrainingRun.objects.filter(pk=labelling.pk).update(
        stage="fitting", heartbeat_at=timezone.now() - timedelta(seconds=600)
    )
    assert services.training_runs_fail_stale() == 1  # a fit beats for itself: dead


def test_tasks_in_process_only_the_heartbeat_counts(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    assert broker_waiting({label_chunk_task.name}) is None  # no queue to ask
    run = running_run(heartbeat_age=600)
    assert services.training_runs_fail_stale() == 1
    assert TrainingRun.objects.get(pk=run.pk).status == "failed"
