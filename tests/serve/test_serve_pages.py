"""The pages render, and everything they load comes from this server (it must work offline)."""

import re

import pytest

PAGES = {
    "/": ['id="jobs"', "queue.js"],
    "/job/1": ['id="plot-losses"', 'id="plot-fid"', 'id="grid-slider"', "plot.js", "job.js"],
    "/explore/1": ['id="seeds"', 'id="weight"', 'id="child"', 'id="play"', "explore.js"],
    "/review": ['id="cards"', 'id="decision"', 'id="reason"', "review.js"],
}


@pytest.mark.parametrize("path", list(PAGES))
def test_pages_render_and_load_only_local_files(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    for part in PAGES[path]:
        assert part in response.text
    assert "http://" not in response.text
    assert "https://" not in response.text
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', response.text)
    assert len(assets) >= 3
    for asset in assets:
        loaded = client.get(asset)
        assert loaded.status_code == 200, asset
        assert "http://" not in loaded.text.replace("http://www.w3.org/2000/svg", "")


def test_page_of_a_missing_job_is_not_found(client):
    assert client.get("/job/99").status_code == 404
    assert client.get("/explore/abc").status_code == 404


def test_pages_pass_the_token_on(token_client, token):
    page = token_client.get(f"/job/1?token={token}")
    assert page.status_code == 200
    assert f'src="/static/job.js?token={token}"' in page.text
    assert f'href="/static/style.css?token={token}"' in page.text
    assert token_client.get(f"/static/job.js?token={token}").status_code == 200
    assert token_client.get("/static/job.js").status_code == 401
    assert token_client.get("/job/1").status_code == 401


def test_responses_carry_the_security_headers(client):
    headers = client.get("/").headers
    assert "default-src 'self'" in headers["content-security-policy"]
    assert headers["referrer-policy"] == "no-referrer"  # a token in the URL stays here
    assert headers["x-content-type-options"] == "nosniff"
    assert client.get("/api/jobs").headers["cache-control"] == "no-store"
