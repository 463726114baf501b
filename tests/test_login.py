def test_account_user_logs_in_and_out(client, bob):
    page = client.get("/accounts/login/")
    assert page.status_code == 200 and b'name="username"' in page.content
    response = client.post("/accounts/login/", {"username": "bob", "password": "correct horse battery staple"})
    assert response.status_code == 302
    assert client.session.get("_auth_user_id") == str(bob.pk)
    client.post("/accounts/logout/")
    assert "_auth_user_id" not in client.session


def test_wrong_password_shows_an_error(client, bob):
    response = client.post("/accounts/login/", {"username": "bob", "password": "nope"})
    assert response.status_code == 200
    assert b"errorlist" in response.content
