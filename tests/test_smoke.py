def test_personas_belong_to_their_accounts(alice, bob, charlie, sam):
    assert alice.account.slug == "acme" and bob.account_id == alice.account_id
    assert charlie.account.slug == "globex"
    assert sam.account is None and sam.is_staff
    assert bob.primary_phone() == "+4915110000002"
