"""The GitHub stand-in behaves like GitHub where rasbot's GitHub source can tell.

Other tests trust this stub to fail the way GitHub fails; these pin that it does,
through a real HTTP client on a real socket.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.github_stub import GitHubStub, load_releases, make_release

TOKEN = "ghp_test0123456789"
RELEASES_PATH = "/repos/RasPlex/RasPlex/releases"
SHARED_FIXTURES = Path(__file__).resolve().parents[2] / "shared/fixtures/github-api"
RATE_HEADERS = (
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-ratelimit-used",
    "x-ratelimit-resource",
)


class FakeClock:
    """A clock the test moves, so rate-limit windows pass without sleeping."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def connect(stub: GitHubStub, **options: object) -> httpx.Client:
    """A client for the stub. Plain HTTP: loading CA certificates would only cost
    50 ms a client."""
    return httpx.Client(base_url=stub.url, timeout=5, verify=False, **options)


def releases(count: int = 12) -> list[dict]:
    """Synthetic releases, newest first, ids 100 + n for tag v1.n."""
    return [
        make_release(100 + n, f"v1.{n}", body=f"notes {n}", assets=[f"img-{n}.gz"])
        for n in range(count, 0, -1)
    ]


@pytest.fixture
def stub() -> Iterator[GitHubStub]:
    with GitHubStub(releases(), page_size=5, token=TOKEN) as running:
        yield running


@pytest.fixture
def client(stub: GitHubStub) -> Iterator[httpx.Client]:
    with connect(stub, headers={"Authorization": f"token {TOKEN}"}) as http:
        yield http


def fetch_all(client: httpx.Client, url: str) -> list[httpx.Response]:
    """Follow rel="next" the way a client should, whatever path it names."""
    pages = [client.get(url)]
    while "next" in pages[-1].links:
        pages.append(client.get(pages[-1].links["next"]["url"]))
    return pages


# Pagination


def test_pagination_reaches_every_release_through_the_repositories_path(
    stub: GitHubStub, client: httpx.Client
) -> None:
    pages = fetch_all(client, f"{RELEASES_PATH}?per_page=100")

    assert [page.status_code for page in pages] == [200, 200, 200]
    ids = [release["id"] for page in pages for release in page.json()]
    assert ids == list(range(112, 100, -1))
    assert [request.path for request in stub.requests] == [
        f"{RELEASES_PATH}?per_page=100",
        "/repositories/1000/releases?per_page=100&page=2",
        "/repositories/1000/releases?per_page=100&page=3",
    ]


def test_link_header_matches_githubs_recording() -> None:
    recording = SHARED_FIXTURES / "paginate-issues.json"
    if not recording.exists():
        pytest.skip("shared GitHub recordings are not beside this checkout")
    exchanges = json.loads(recording.read_text())

    # The recording: 13 issues, per_page=3, five pages; the same shape here.
    with (
        GitHubStub(releases(13), page_size=5) as stub,
        connect(stub) as client,
    ):
        pages = fetch_all(client, f"{RELEASES_PATH}?per_page=3")

        links = [
            exchange["headers"]["link"]
            .replace("https://api.github.com", stub.url)
            .replace("/issues?", "/releases?")
            for exchange in exchanges
        ]
        paths = [
            exchange["path"].replace("/issues?", "/releases?")
            for exchange in exchanges[1:]
        ]
        assert [page.headers["link"] for page in pages] == links
        assert [request.path for request in stub.requests[1:]] == paths


def test_per_page_is_capped_by_the_page_size(client: httpx.Client) -> None:
    small = client.get(RELEASES_PATH, params={"per_page": 2})
    large = client.get(RELEASES_PATH, params={"per_page": 100})

    assert small.status_code == large.status_code == 200
    assert len(small.json()) == 2
    assert len(large.json()) == 5


def test_links_echo_the_query_without_per_page_when_none_was_sent(
    stub: GitHubStub, client: httpx.Client
) -> None:
    response = client.get(RELEASES_PATH)

    assert response.status_code == 200
    assert len(response.json()) == 5
    assert (
        response.links["next"]["url"] == f"{stub.url}/repositories/1000/releases?page=2"
    )
    assert response.links["last"]["url"].endswith("?page=3")
    assert set(response.links) == {"next", "last"}


def test_a_page_past_the_last_is_empty(client: httpx.Client) -> None:
    response = client.get(RELEASES_PATH, params={"per_page": 5, "page": 9})

    assert response.status_code == 200
    assert response.json() == []


def test_a_single_page_has_no_link_header() -> None:
    with GitHubStub(releases(3)) as stub, connect(stub) as client:
        response = client.get(RELEASES_PATH)

    assert response.status_code == 200
    assert len(response.json()) == 3
    assert "link" not in response.headers


def test_repository_id_is_the_one_links_use(
    stub: GitHubStub, client: httpx.Client
) -> None:
    by_name = client.get("/repos/rasplex/RASPLEX")
    by_id = client.get("/repositories/1000")

    assert by_name.status_code == by_id.status_code == 200
    assert by_name.json() == by_id.json()
    assert by_name.json()["id"] == 1000
    assert by_name.json()["full_name"] == "RasPlex/RasPlex"


@pytest.mark.parametrize(
    "path",
    [
        "/repos/RasPlex/Other/releases",
        "/repositories/999/releases",
        f"{RELEASES_PATH}/",
        f"/{RELEASES_PATH}",
        "/rate_limit",
    ],
)
def test_unknown_paths_are_404_in_githubs_error_shape(
    client: httpx.Client, path: str
) -> None:
    response = client.get(path)

    assert response.status_code == 404
    assert response.json() == {
        "message": "Not Found",
        "documentation_url": "https://docs.github.com/rest",
    }


# ETags


def test_a_repeated_request_with_the_etag_is_304_without_a_body(
    stub: GitHubStub, client: httpx.Client
) -> None:
    first = client.get(RELEASES_PATH)
    etag = first.headers["etag"]
    again = client.get(RELEASES_PATH, headers={"If-None-Match": etag})

    assert first.status_code == 200
    assert etag.startswith('"') and etag.endswith('"')  # strong, not W/
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["link"] == first.headers["link"]
    assert stub.counts.requests == 2
    assert stub.counts.ok == 1
    assert stub.counts.not_modified == 1


def test_a_304_carries_the_current_link_though_the_page_is_unchanged(
    stub: GitHubStub, client: httpx.Client
) -> None:
    # GitHub's ETag covers the items, not the Link: a client that reuses the Link
    # it cached with the page misses a page added behind it.
    stub.set_releases(releases(10))
    cached = client.get(RELEASES_PATH)

    stub.add_release(make_release(100, "v1.0"), index=10)
    again = client.get(RELEASES_PATH, headers={"If-None-Match": cached.headers["etag"]})

    assert again.status_code == 304
    assert cached.links["last"]["url"].endswith("page=2")
    assert again.links["last"]["url"].endswith("page=3")


def test_weak_and_listed_etags_match_too(client: httpx.Client) -> None:
    etag = client.get(RELEASES_PATH).headers["etag"]

    weak = client.get(RELEASES_PATH, headers={"If-None-Match": f"W/{etag}"})
    listed = client.get(RELEASES_PATH, headers={"If-None-Match": f'"x", {etag}'})
    stale = client.get(RELEASES_PATH, headers={"If-None-Match": '"stale"'})

    assert (weak.status_code, listed.status_code, stale.status_code) == (304, 304, 200)


def test_every_page_has_its_own_etag(client: httpx.Client) -> None:
    pages = fetch_all(client, RELEASES_PATH)

    etags = {page.headers["etag"] for page in pages}
    assert len(etags) == len(pages) == 3


# Token


@pytest.mark.parametrize(
    "authorization",
    [None, "token wrong", f"Basic {TOKEN}", f"token {TOKEN}x", TOKEN],
)
def test_requests_without_the_token_are_401_bad_credentials(
    stub: GitHubStub, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    with connect(stub, headers=headers) as client:
        response = client.get(RELEASES_PATH)

    assert response.status_code == 401
    assert response.json() == {
        "message": "Bad credentials",
        "documentation_url": "https://docs.github.com/rest",
    }


@pytest.mark.parametrize("scheme", ["token", "Bearer", "bearer"])
def test_token_and_bearer_schemes_are_accepted(stub: GitHubStub, scheme: str) -> None:
    with connect(stub, headers={"Authorization": f"{scheme} {TOKEN}"}) as client:
        response = client.get(RELEASES_PATH)

    assert response.status_code == 200


def test_a_token_outside_the_authorization_header_is_recorded(
    stub: GitHubStub, client: httpx.Client
) -> None:
    client.get(RELEASES_PATH)
    assert stub.token_leaks == []

    client.get(RELEASES_PATH, params={"access_token": TOKEN})
    client.get(RELEASES_PATH, headers={"X-Debug": f"sent {TOKEN}"})

    assert stub.token_leaks == [
        f"url: {RELEASES_PATH}?access_token={TOKEN}",
        "header: x-debug",
    ]


# Rate limits


def test_every_answer_carries_rate_limit_headers(
    stub: GitHubStub, client: httpx.Client
) -> None:
    ok = client.get(RELEASES_PATH)
    not_modified = client.get(
        RELEASES_PATH, headers={"If-None-Match": ok.headers["etag"]}
    )
    missing = client.get("/nowhere")
    with connect(stub) as anonymous:
        unauthorised = anonymous.get(RELEASES_PATH)

    for response in (ok, not_modified, missing, unauthorised):
        headers = response.headers
        assert all(name in headers for name in RATE_HEADERS), response.status_code
        assert headers["x-ratelimit-resource"] == "core"
        used = int(headers["x-ratelimit-used"])
        assert used + int(headers["x-ratelimit-remaining"]) == 5000


def test_with_a_token_a_304_costs_nothing() -> None:
    with (
        GitHubStub(releases(), token=TOKEN) as stub,
        connect(stub, headers={"Authorization": f"token {TOKEN}"}) as client,
    ):
        ok = client.get(RELEASES_PATH)
        etag = {"If-None-Match": ok.headers["etag"]}
        not_modified = client.get(RELEASES_PATH, headers=etag)

    assert ok.headers["x-ratelimit-limit"] == "5000"
    assert ok.headers["x-ratelimit-remaining"] == "4999"
    assert not_modified.status_code == 304
    assert not_modified.headers["x-ratelimit-remaining"] == "4999"


def test_without_a_token_every_answer_costs_one() -> None:
    with GitHubStub(releases()) as stub, connect(stub) as client:
        ok = client.get(RELEASES_PATH)
        etag = {"If-None-Match": ok.headers["etag"]}
        not_modified = client.get(RELEASES_PATH, headers=etag)

    assert ok.headers["x-ratelimit-limit"] == "60"
    assert ok.headers["x-ratelimit-remaining"] == "59"
    assert not_modified.status_code == 304
    assert not_modified.headers["x-ratelimit-remaining"] == "58"
    assert not_modified.headers["x-ratelimit-used"] == "2"


def test_an_exhausted_budget_is_403_until_the_window_resets() -> None:
    clock = FakeClock()
    with (
        GitHubStub(releases(), limit=2, clock=clock) as stub,
        connect(stub) as client,
    ):
        statuses = [client.get(RELEASES_PATH).status_code for _ in range(3)]
        refused = client.get(RELEASES_PATH)
        clock.now = int(refused.headers["x-ratelimit-reset"])
        recovered = client.get(RELEASES_PATH)

    assert statuses == [200, 200, 403]
    assert refused.status_code == 403
    assert refused.json()["message"].startswith("API rate limit exceeded for ")
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert recovered.status_code == 200
    assert recovered.headers["x-ratelimit-remaining"] == "1"


def test_a_forced_rate_limit_resets_when_it_says() -> None:
    clock = FakeClock()
    auth = {"Authorization": f"token {TOKEN}"}
    with (
        GitHubStub(releases(), token=TOKEN, clock=clock) as stub,
        connect(stub, headers=auth) as client,
    ):
        stub.rate_limit(reset_in=30)
        refused = client.get(RELEASES_PATH)
        clock.now += 30
        recovered = client.get(RELEASES_PATH)

    assert refused.status_code == 403
    assert refused.headers["x-ratelimit-reset"] == str(math.ceil(clock.now))
    assert refused.json()["message"] == "API rate limit exceeded for user ID 1."
    assert recovered.status_code == 200
    assert recovered.headers["x-ratelimit-remaining"] == "4999"


def test_a_secondary_limit_is_429_with_retry_after() -> None:
    clock = FakeClock()
    with (
        GitHubStub(releases(), clock=clock) as stub,
        connect(stub) as client,
    ):
        stub.rate_limit(secondary=True, retry_after=10)
        refused = client.get(RELEASES_PATH)
        clock.now += 4
        still = client.get(RELEASES_PATH)
        clock.now += 6
        recovered = client.get(RELEASES_PATH)

    assert refused.status_code == still.status_code == 429
    assert refused.headers["retry-after"] == "10"
    assert still.headers["retry-after"] == "6"
    assert "secondary rate limit" in refused.json()["message"]
    assert refused.headers["x-ratelimit-remaining"] != "0"
    assert recovered.status_code == 200


def test_a_secondary_limit_can_last_a_number_of_requests(
    stub: GitHubStub, client: httpx.Client
) -> None:
    stub.rate_limit(secondary=True, retry_after=60, status=403, times=1)

    first = client.get(RELEASES_PATH)
    second = client.get(RELEASES_PATH)

    assert first.status_code == 403
    assert first.headers["retry-after"] == "60"
    assert second.status_code == 200


def test_clear_rate_limit_restores_the_budget(
    stub: GitHubStub, client: httpx.Client
) -> None:
    stub.rate_limit(reset_in=600)
    assert client.get(RELEASES_PATH).status_code == 403

    stub.clear_rate_limit()
    response = client.get(RELEASES_PATH)

    assert response.status_code == 200
    assert response.headers["x-ratelimit-remaining"] == "4999"


# Faults


def test_a_failure_on_one_page_leaves_the_others_alone(
    stub: GitHubStub, client: httpx.Client
) -> None:
    stub.fail(502, page=2)

    first = client.get(RELEASES_PATH)
    second = client.get(first.links["next"]["url"])
    third = client.get(f"{RELEASES_PATH}?page=3")
    second_again = client.get(first.links["next"]["url"])

    assert (first.status_code, third.status_code) == (200, 200)
    assert second.status_code == second_again.status_code == 502
    assert second.json()["message"] == "Bad Gateway"


def test_a_failure_for_all_requests_for_a_number_of_times(
    stub: GitHubStub, client: httpx.Client
) -> None:
    stub.fail(503, times=2)

    statuses = [client.get("/repos/RasPlex/RasPlex").status_code for _ in range(3)]

    assert statuses == [503, 503, 200]


def test_clear_faults_ends_every_fault(stub: GitHubStub, client: httpx.Client) -> None:
    stub.fail(500)
    stub.garbage("html", page=1)
    assert client.get(RELEASES_PATH).status_code == 500

    stub.clear_faults()

    assert client.get(RELEASES_PATH).status_code == 200


def test_truncated_garbage_is_half_the_real_page(
    stub: GitHubStub, client: httpx.Client
) -> None:
    whole = client.get(f"{RELEASES_PATH}?page=2").content
    stub.garbage("truncated", page=2, times=1)

    truncated = client.get(f"{RELEASES_PATH}?page=2")
    page_1 = client.get(RELEASES_PATH)

    assert truncated.status_code == 200
    assert whole.startswith(truncated.content)
    assert len(truncated.content) == len(whole) // 2
    with pytest.raises(json.JSONDecodeError):
        truncated.json()
    assert isinstance(page_1.json(), list)
    assert client.get(f"{RELEASES_PATH}?page=2").content == whole


def test_html_garbage_is_an_error_page(stub: GitHubStub, client: httpx.Client) -> None:
    stub.garbage("html", page=1, status=502)

    response = client.get(RELEASES_PATH)

    assert response.status_code == 502
    assert response.headers["content-type"] == "text/html"
    assert response.text.startswith("<!DOCTYPE html>")


def test_object_garbage_is_json_but_not_a_list(
    stub: GitHubStub, client: httpx.Client
) -> None:
    stub.garbage("object")

    response = client.get(RELEASES_PATH)

    assert response.status_code == 200
    assert isinstance(response.json(), dict)


def test_cut_garbage_drops_the_connection_mid_body(
    stub: GitHubStub, client: httpx.Client
) -> None:
    stub.garbage("cut", page=1, times=1)

    with pytest.raises(httpx.RemoteProtocolError):
        client.get(RELEASES_PATH)
    assert client.get(RELEASES_PATH).status_code == 200


def test_unknown_garbage_is_refused(stub: GitHubStub) -> None:
    with pytest.raises(ValueError, match="garbage kind"):
        stub.garbage("nonsense")


def test_a_delay_on_one_page_makes_the_client_time_out(
    stub: GitHubStub, client: httpx.Client
) -> None:
    stub.delay(5, page=2, times=1)

    first = client.get(RELEASES_PATH, timeout=0.5)
    with pytest.raises(httpx.ReadTimeout):
        client.get(first.links["next"]["url"], timeout=0.2)
    retried = client.get(first.links["next"]["url"], timeout=0.5)

    assert first.status_code == retried.status_code == 200
    assert stub.counts.requests == 3


def test_faults_set_from_another_thread_apply_while_serving(
    stub: GitHubStub, client: httpx.Client
) -> None:
    setter = threading.Thread(target=stub.fail, args=(500,), kwargs={"times": 1})
    setter.start()
    setter.join()

    assert client.get(RELEASES_PATH).status_code == 500
    assert client.get(RELEASES_PATH).status_code == 200


def test_concurrent_requests_are_all_counted(
    stub: GitHubStub, client: httpx.Client
) -> None:
    workers = [
        threading.Thread(target=client.get, args=(RELEASES_PATH,)) for _ in range(20)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert stub.counts.requests == stub.counts.ok == 20
    assert len(stub.requests) == 20


# Mutations


def test_editing_a_release_changes_only_its_pages_etag(
    stub: GitHubStub, client: httpx.Client
) -> None:
    before = [page.headers["etag"] for page in fetch_all(client, RELEASES_PATH)]

    stub.edit_release(105, body="fixed notes", assets=[])
    page_1 = client.get(RELEASES_PATH, headers={"If-None-Match": before[0]})
    page_2 = client.get(f"{RELEASES_PATH}?page=2", headers={"If-None-Match": before[1]})

    assert page_1.status_code == 304
    assert page_2.status_code == 200
    assert page_2.headers["etag"] != before[1]
    edited = next(release for release in page_2.json() if release["id"] == 105)
    assert (edited["body"], edited["assets"]) == ("fixed notes", [])


def test_adding_a_release_puts_it_first_and_shifts_the_pages(
    stub: GitHubStub, client: httpx.Client
) -> None:
    etag = client.get(RELEASES_PATH).headers["etag"]

    stub.add_release(make_release(113, "v1.13"))
    response = client.get(RELEASES_PATH, headers={"If-None-Match": etag})
    every = [r["id"] for page in fetch_all(client, RELEASES_PATH) for r in page.json()]

    assert response.status_code == 200
    assert response.json()[0]["tag_name"] == "v1.13"
    assert every == list(range(113, 100, -1))


def test_deleting_and_replacing_releases(
    stub: GitHubStub, client: httpx.Client
) -> None:
    stub.delete_release("v1.12")
    stub.delete_release(111)
    after_delete = client.get(RELEASES_PATH).json()

    stub.set_releases(releases(2))
    after_set = client.get(RELEASES_PATH).json()

    assert [release["id"] for release in after_delete] == [110, 109, 108, 107, 106]
    assert [release["id"] for release in after_set] == [102, 101]
    with pytest.raises(KeyError):
        stub.edit_release("v9.9", body="")


def test_the_stub_keeps_its_own_copy_of_the_releases() -> None:
    data = releases(2)
    stub = GitHubStub(data)

    data[0]["body"] = "changed behind its back"
    served = stub.releases
    served[1]["body"] = "changed again"

    assert stub.releases[0]["body"] == "notes 2"
    assert stub.releases[1]["body"] == "notes 1"


# Recording


def test_requests_are_recorded_with_method_path_and_headers(
    stub: GitHubStub, client: httpx.Client
) -> None:
    client.get(RELEASES_PATH, params={"per_page": 3})
    client.post("/repos/RasPlex/RasPlex/releases", json={"tag_name": "v2"})

    get, post = stub.requests
    assert (get.method, get.path, get.status) == (
        "GET",
        f"{RELEASES_PATH}?per_page=3",
        200,
    )
    assert get.headers["authorization"] == f"token {TOKEN}"
    assert (post.method, post.status) == ("POST", 404)


def test_reset_counters_forgets_requests_counts_and_leaks(
    stub: GitHubStub, client: httpx.Client
) -> None:
    client.get(RELEASES_PATH, params={"access_token": TOKEN})

    stub.reset_counters()

    assert stub.requests == []
    assert stub.token_leaks == []
    assert (stub.counts.requests, stub.counts.ok, stub.counts.not_modified) == (0, 0, 0)


# Script


def test_runs_as_a_script_printing_its_url_first(tmp_path: Path) -> None:
    releases_file = tmp_path / "releases.json"
    releases_file.write_text(json.dumps(releases(4)))
    assert len(load_releases(releases_file)) == 4
    command = [
        sys.executable,
        str(Path(__file__).with_name("github_stub.py")),
        *("--releases", str(releases_file), "--port", "0", "--page-size", "3"),
        *("--token", TOKEN),
    ]

    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            url = process.stdout.readline().strip()
            auth = {"Authorization": f"token {TOKEN}"}
            with httpx.Client(base_url=url, headers=auth, verify=False) as client:
                response = client.get(RELEASES_PATH)
        finally:
            process.terminate()
        assert process.wait(timeout=5) == 0

    assert url.startswith("http://127.0.0.1:")
    assert response.status_code == 200
    assert len(response.json()) == 3
    assert response.links["next"]["url"] == f"{url}/repositories/1000/releases?page=2"
