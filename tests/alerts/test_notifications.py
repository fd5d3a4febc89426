from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import paho.mqtt.client as mqtt
import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from paho.mqtt.enums import CallbackAPIVersion

from alerts.models import CaseNotification, WebhookDelivery, WebhookEndpoint
from alerts.notifications import webhook_backoff_seconds, webhook_endpoint_create
from detection.models import Band, Case
from detection.notifications import case_notification_create, notify_case
from tests import factories
from tests.conftest import World

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


@dataclass
class Receiver:
    """A webhook receiver on loopback that answers with the scripted status codes in turn."""

    codes: list[int]
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(codes=[])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            # Header names are case-insensitive; urllib sends them capitalised.
            state.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            code = state.codes.pop(0) if state.codes else 200
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/abusewatch"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def fast(settings):
    settings.MQTT_URL = ""
    settings.WEBHOOK_TIMEOUT_SECONDS = 5.0
    settings.NOTIFY_COOLDOWN_SECONDS = 300
    return settings


def verify(endpoint: WebhookEndpoint, headers: dict[str, str], body: bytes) -> None:
    timestamp = headers["x-abusewatch-timestamp"]
    assert abs(time.time() - int(timestamp)) < 60
    expected = hmac.new(
        endpoint.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(headers["x-abusewatch-signature"], f"sha256={expected}")
    assert headers["content-type"] == "application/json"


def test_signed_webhook_retried_after_a_500_then_delivered(
    world: World, receiver: Receiver, fast, eager_tasks, django_capture_on_commit_callbacks
):
    endpoint = webhook_endpoint_create(site=world.site_a, name="Centre bell", url=receiver.url)
    receiver.codes = [500]
    with django_capture_on_commit_callbacks(execute=True):
        notification = case_notification_create(case_id=world.uncertain_case_a.pk)
    assert notification is not None and not notification.suppressed

    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED
    assert delivery.attempts == 2 and delivery.response_code == 200 and delivery.error == ""
    assert len(receiver.received) == 2
    for headers, body in receiver.received:
        verify(endpoint, headers, body)
    payload = json.loads(receiver.received[-1][1])
    assert payload["event"] == "case.uncertain"
    assert payload["case"]["id"] == world.uncertain_case_a.pk
    # A tampered body no longer matches the signature.
    headers, body = receiver.received[-1]
    with pytest.raises(AssertionError):
        verify(endpoint, headers, body.replace(b"uncertain", b"violent"))


def test_webhook_gives_up_after_the_last_attempt(
    world: World, receiver: Receiver, fast, eager_tasks, django_capture_on_commit_callbacks
):
    fast.WEBHOOK_MAX_ATTEMPTS = 3
    endpoint = webhook_endpoint_create(site=world.site_a, name="Down", url=receiver.url)
    receiver.codes = [500, 503, 500, 200]
    with django_capture_on_commit_callbacks(execute=True):
        case_notification_create(case_id=world.uncertain_case_a.pk)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert delivery.attempts == 3 and delivery.response_code == 500
    assert delivery.error == "HTTP 500"
    assert len(receiver.received) == 3


def test_unreachable_receiver_is_logged_as_an_error(
    world: World, fast, eager_tasks, django_capture_on_commit_callbacks
):
    fast.WEBHOOK_MAX_ATTEMPTS = 2
    endpoint = webhook_endpoint_create(site=world.site_a, name="Gone", url="http://127.0.0.1:1/x")
    with django_capture_on_commit_callbacks(execute=True):
        case_notification_create(case_id=world.uncertain_case_a.pk)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert delivery.response_code is None and "URLError" in delivery.error


def test_backoff_doubles(settings):
    settings.WEBHOOK_BACKOFF_SECONDS = 10.0
    assert [webhook_backoff_seconds(n) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]


def test_cooldown_per_camera_and_band_and_one_notification_per_band(
    world: World, receiver: Receiver, fast, eager_tasks, django_capture_on_commit_callbacks
):
    webhook_endpoint_create(site=world.site_a, name="All", url=receiver.url)
    second = factories.CaseFactory(camera=world.camera_a)  # uncertain, same camera
    other_camera = factories.CameraFactory(site=world.site_a, name="Hall")
    elsewhere = factories.CaseFactory(camera=other_camera)
    with django_capture_on_commit_callbacks(execute=True):
        first = case_notification_create(case_id=world.uncertain_case_a.pk)
        again = case_notification_create(case_id=world.uncertain_case_a.pk)
        storm = case_notification_create(case_id=second.pk)
        other = case_notification_create(case_id=elsewhere.pk)
    assert first is not None and not first.suppressed
    assert again is None
    assert storm is not None and storm.suppressed
    assert other is not None and not other.suppressed
    assert len(receiver.received) == 2

    # The same case upgraded to violent is news: a new band, not in cooldown.
    Case.objects.filter(pk=world.uncertain_case_a.pk).update(band=Band.VIOLENT, peak_score=0.95)
    with django_capture_on_commit_callbacks(execute=True):
        upgrade = case_notification_create(case_id=world.uncertain_case_a.pk)
    assert upgrade is not None and not upgrade.suppressed and upgrade.band == "violent"
    assert json.loads(receiver.received[-1][1])["event"] == "case.violent"
    assert CaseNotification.objects.filter(case=world.uncertain_case_a).count() == 2

    # Dismissed cases and other sites' endpoints are not notified.
    dismissed = factories.CaseFactory(camera=other_camera, status=Case.Status.DISMISSED)
    assert case_notification_create(case_id=dismissed.pk) is None
    with django_capture_on_commit_callbacks(execute=True):
        case_notification_create(case_id=world.uncertain_case_b.pk)
    assert len(receiver.received) == 3


def test_endpoint_band_filter_and_disabled_endpoints(
    world: World, receiver: Receiver, fast, eager_tasks, django_capture_on_commit_callbacks
):
    webhook_endpoint_create(
        site=world.site_a, name="Violent only", url=receiver.url, notify_uncertain=False
    )
    disabled = webhook_endpoint_create(site=world.site_a, name="Off", url=receiver.url)
    disabled.enabled = False
    disabled.save()
    with django_capture_on_commit_callbacks(execute=True):
        case_notification_create(case_id=world.uncertain_case_a.pk)
    assert receiver.received == []
    assert not WebhookDelivery.objects.exists()


def test_mqtt_subscriber_receives_the_case(
    world: World, settings, eager_tasks, django_capture_on_commit_callbacks
):
    prefix = f"abusewatch-test-{uuid.uuid4().hex}"
    settings.MQTT_URL = "mqtt://127.0.0.1:1883"
    settings.MQTT_TOPIC_PREFIX = prefix
    messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    subscribed = threading.Event()
    subscriber = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4().hex[:8]}")
    subscriber.on_message = lambda client, userdata, message: messages.put(message)
    subscriber.on_subscribe = lambda *args: subscribed.set()
    subscriber.on_connect = lambda client, *args: client.subscribe(f"{prefix}/#", qos=1)
    subscriber.connect("127.0.0.1", 1883)
    subscriber.loop_start()
    try:
        assert subscribed.wait(10)
        with django_capture_on_commit_callbacks(execute=True):
            notification = case_notification_create(case_id=world.violent_case_a.pk)
        message = messages.get(timeout=10)
    finally:
        subscriber.disconnect()
        subscriber.loop_stop()
    camera = world.camera_a
    assert message.topic == f"{prefix}/sites/{camera.site_id}/cameras/{camera.pk}/cases"
    assert message.qos == 1
    payload = json.loads(message.payload)
    assert payload["event"] == "case.violent"
    assert payload["case"]["id"] == world.violent_case_a.pk
    assert notification is not None
    notification.refresh_from_db()
    assert notification.mqtt_status == CaseNotification.MqttStatus.PUBLISHED


def test_mqtt_broker_down_is_retried_then_marked_failed(
    world: World, settings, eager_tasks, django_capture_on_commit_callbacks
):
    settings.MQTT_URL = "mqtt://127.0.0.1:1"
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    with django_capture_on_commit_callbacks(execute=True):
        notification = case_notification_create(case_id=world.violent_case_a.pk)
    assert notification is not None
    notification.refresh_from_db()
    assert notification.mqtt_status == CaseNotification.MqttStatus.FAILED
    assert notification.mqtt_attempts == 2


def test_notify_case_queues_the_task(world: World, fast, eager_tasks):
    notify_case(world.uncertain_case_a.pk)
    assert CaseNotification.objects.filter(case=world.uncertain_case_a).exists()


@pytest.mark.parametrize(
    "url",
    ["ftp://example.org/hook", "javascript:alert(1)", "file:///etc/passwd", "not a url",
     "http://" + "a" * 600 + ".org/"],
)  # fmt: skip
def test_bad_webhook_urls_are_refused(world: World, url: str):
    with pytest.raises(ValidationError) as error:
        webhook_endpoint_create(site=world.site_a, name="Bad", url=url)
    assert "url" in error.value.message_dict
    assert not WebhookEndpoint.objects.exists()


def test_hostile_and_oversized_names(world: World):
    with pytest.raises(ValidationError) as error:
        webhook_endpoint_create(site=world.site_a, name="x" * 101, url="https://example.org/h")
    assert "name" in error.value.message_dict
    hostile = webhook_endpoint_create(
        site=world.site_a, name="<script>alert(1)</script>", url="https://example.org/h"
    )
    client = Client()
    client.force_login(world.olga)
    page = client.get("/admin/alerts/webhookendpoint/")
    assert page.status_code == 200
    assert b"<script>alert(1)</script>" not in page.content
    assert hostile.name.encode() not in page.content


def test_admin_form_reports_bad_url_and_stores_nothing(world: World):
    client = Client()
    client.force_login(world.olga)
    response = client.post(
        "/admin/alerts/webhookendpoint/add/",
        {
            "site": world.site_a.pk,
            "name": "Bad",
            "url": "ftp://example.org/x",
            "secret": "s" * 64,
            "notify_violent": "on",
            "enabled": "on",
        },
    )
    assert response.status_code == 200
    assert b"Enter a valid URL." in response.content
    assert not WebhookEndpoint.objects.exists()
    response = client.post(
        "/admin/alerts/webhookendpoint/add/",
        {
            "site": world.site_a.pk,
            "name": "No scheme",
            "url": "receiver.example.org/hook",
            "secret": "s" * 64,
            "notify_violent": "on",
            "enabled": "on",
        },
    )
    assert response.status_code == 302
    assert WebhookEndpoint.objects.get().url == "https://receiver.example.org/hook"


@pytest.mark.parametrize("username", ["alice", "erin", "lee", "charlie"])
def test_webhook_admin_refused_to_non_operators(world: World, username: str):
    client = Client()
    client.force_login(getattr(world, username))
    for url in [
        "/admin/alerts/webhookendpoint/",
        "/admin/alerts/webhookdelivery/",
        "/admin/alerts/webhookendpoint/add/",
    ]:
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]
