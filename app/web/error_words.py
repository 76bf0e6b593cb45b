"""What a registration or launch error page says first, in plain words: one table.

The person in front of a registration error is an LMS administrator, of a launch error a
teacher or student: neither knows the LTI specification. Each error rule (and each error kind
that has no rule) has one entry here: (first line, what to do). The protocol layer's own
sentence (`error.detail`), the rule, the spec section and the LMS's answer go under "Technical
details" on the page.

The strings are plain literals, to be wrapped for translation; `{lms}` is the LMS's product
name when Gatehouse knows it ("your LMS" otherwise), filled in at render time. The test in
tests/test_error_words.py fails when a rule the code can raise has no entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..lti import lms as lms_families
from ..lti.errors import spec_reference

# Sentences repeat below: each entry is kept whole so a translator sees full sentences.
WORDS: dict[str, tuple[str, str]] = {
    # --- The registration URL was opened the wrong way ---
    "openid-configuration-required": (
        "This address is meant to be pasted into your LMS, not opened on its own.",
        "In {lms}, add a new LTI 1.3 tool by dynamic registration and paste this page's "
        "address there.",
    ),
    "missing-parameter": (
        "The tool was opened without the details your LMS normally sends.",
        "Open the tool from a link or an activity in your course.",
    ),
    "url-absolute": (
        "The address your LMS gave Gatehouse is not a complete web address.",
        "Start the registration again from {lms}. If it happens again, ask your LMS's support "
        "whether its registration feature is set up correctly.",
    ),
    "url-syntax": (
        "An address your LMS gave Gatehouse is not a valid web address.",
        "Start the registration again from {lms}. If it happens again, send this page to your "
        "LMS's support.",
    ),
    "url-scheme": (
        "An address your LMS gave Gatehouse is not a web address.",
        "Start the registration again from {lms}. If it happens again, send this page to your "
        "LMS's support.",
    ),
    "url-userinfo": (
        "An address your LMS gave Gatehouse contains a user name or password.",
        "Ask your LMS's support to remove the user name and password from its web address, "
        "then start the registration again.",
    ),
    "url-host": (
        "An address your LMS gave Gatehouse has a server name Gatehouse cannot use.",
        "Send this page to your LMS's support, then start the registration again from {lms}.",
    ),
    "https-only": (
        "Your LMS is not using a secure (https) address, and Gatehouse only connects to secure "
        "addresses.",
        "Ask whoever runs {lms} to serve it over https, then start the registration again. "
        "If this LMS is only for testing, the tool's owner can allow insecure LMSes.",
    ),
    "public-address-only": (
        "Your LMS is on a private network address that Gatehouse is not allowed to reach.",
        "Register from an LMS that can be reached from the internet, or ask the tool's owner "
        "about registering a private LMS.",
    ),
    "request-header": (
        "Gatehouse refused to send a request containing unusual characters from your LMS.",
        "Start the registration again from {lms}. If it happens again, send this page to the "
        "tool's owner.",
    ),
    "redirect-downgrade": (
        "Your LMS sent Gatehouse from a secure address to an insecure one.",
        "Ask whoever runs {lms} to keep all its addresses on https, then start the "
        "registration again.",
    ),
    # --- Gatehouse could not reach the LMS ---
    "connection": (
        "Gatehouse could not connect to your LMS.",
        "Check that {lms} is online and reachable from the internet, then try again or start "
        "the registration again from {lms}. If it keeps failing, send this page to whoever "
        "runs {lms}.",
    ),
    "connect-timeout": (
        "Your LMS took too long to accept Gatehouse's connection.",
        "Wait a few minutes, then try again or start the registration again from {lms}. If "
        "it keeps failing, check that {lms} can be reached from the internet.",
    ),
    "deadline": (
        "Your LMS took too long to answer.",
        "Wait a few minutes, then try again or start the registration again from {lms}. If "
        "it keeps failing, send this page to whoever runs {lms}.",
    ),
    "dns": (
        "Gatehouse could not find your LMS's server on the internet.",
        "Check that {lms}'s web address is public and spelled correctly, then start the "
        "registration again.",
    ),
    "tls": (
        "Gatehouse could not open a secure connection to your LMS: its security certificate "
        "was not accepted.",
        "Ask whoever runs {lms} to install a valid certificate (for example a current one "
        "from a public authority), then start the registration again.",
    ),
    "http-protocol": (
        "Your LMS's server did not answer like a web server.",
        "Check that the address belongs to {lms}, then start the registration again. If it "
        "keeps failing, send this page to whoever runs {lms}.",
    ),
    "response-size": (
        "Your LMS sent an answer much larger than expected.",
        "Start the registration again from {lms}. If it happens again, send this page to your "
        "LMS's support.",
    ),
    "redirect-limit": (
        "Your LMS kept sending Gatehouse on to other addresses.",
        "Check that {lms} is working, then start the registration again. If it keeps "
        "failing, send this page to whoever runs {lms}.",
    ),
    "redirect-loop": (
        "Your LMS sent Gatehouse round in a circle of addresses.",
        "Check that {lms} is working, then start the registration again. If it keeps "
        "failing, send this page to whoever runs {lms}.",
    ),
    # --- The LMS's settings (its published configuration) ---
    "config-json": (
        "Your LMS did not send its settings in a form Gatehouse can read.",
        "Start the registration again from {lms}'s own registration screen. If it keeps "
        "failing, send this page to your LMS's support.",
    ),
    "required-field": (
        "Your LMS's settings are missing something the tool needs.",
        "Send this page to your LMS's support: {lms} may need an update before it can "
        "register this tool this way.",
    ),
    "endpoint-url": (
        "Your LMS's settings contain an address that is not a complete web address.",
        "Send this page to your LMS's support, then start the registration again.",
    ),
    "issuer-url": (
        "Your LMS's settings do not give a usable web address for the LMS itself.",
        "Ask whoever runs {lms} to check its site address setting, then start the "
        "registration again.",
    ),
    "issuer-https": (
        "Your LMS identifies itself with an address that is not secure (not https).",
        "Ask whoever runs {lms} to use its https address as its site address, then start the "
        "registration again.",
    ),
    "issuer-no-query": (
        "Your LMS identifies itself with an address Gatehouse cannot accept.",
        "Ask whoever runs {lms} to check its site address setting, then start the "
        "registration again.",
    ),
    "issuer-host-match": (
        "Your LMS sent settings that seem to belong to a different site, so Gatehouse did not "
        "trust them.",
        "Start the registration again from inside {lms} itself. If it happens again, check "
        "that {lms}'s site address matches the address you use to reach it.",
    ),
    "issuer-prefix": (
        "Your LMS's settings are at an address that does not match the LMS's own address.",
        "Ask whoever runs {lms} to check its site address setting, then start again. The "
        "tool's owner can also relax this check.",
    ),
    "rs256": (
        "Your LMS does not offer the security method this tool needs.",
        "Send this page to your LMS's support: {lms} may need an update to register LTI 1.3 tools.",
    ),
    "private-key-jwt": (
        "Your LMS does not offer the sign-in method this tool needs for its services.",
        "Send this page to your LMS's support: {lms} may need an update to register LTI 1.3 tools.",
    ),
    # --- Decisions of the tool's owner ---
    "blocked-issuer": (
        "The tool's owner does not accept registrations from this LMS.",
        "Contact the tool's owner if you think this is a mistake.",
    ),
    "issuer-not-allowed": (
        "This tool accepts registrations only from LMSes its owner has approved, and this "
        "one is not on the list yet.",
        "Contact the tool's owner to have your LMS approved, then start the registration again.",
    ),
    "invitation-required": (
        "This tool can only be registered with a personal invitation link.",
        "Ask the tool's owner for your invitation link and paste that into {lms} instead.",
    ),
    "invitation-invalid": (
        "This invitation link cannot be used any more.",
        "Ask the tool's owner for a new invitation link, then start the registration again "
        "from {lms}.",
    ),
    "tool-https": (
        "Gatehouse stopped before contacting your LMS: the tool's own address is not set up "
        "securely yet.",
        "Send this page to the tool's owner. Once they have fixed it, start the registration "
        "again from {lms}.",
    ),
    # --- The LMS answered the registration ---
    "platform-response": (
        "Your LMS answered with an error.",
        "Start the registration again from {lms}. If it fails again, send this page to the "
        "tool's owner.",
    ),
    "platform-response:token": (
        "Your LMS did not accept Gatehouse's request: its registration permission may have "
        "expired (it lasts about an hour).",
        "Start the registration again from {lms}, and finish it within the hour.",
    ),
    "platform-response:not-found": (
        "Your LMS did not recognise the registration request.",
        "Start the registration again from {lms}.",
    ),
    "platform-response:rejected": (
        "Your LMS turned down the tool's registration details.",
        "Send this page to the tool's owner so they can adjust the tool's settings, then "
        "start the registration again from {lms}.",
    ),
    "platform-response:server": (
        "Your LMS had an internal problem while answering.",
        "Wait a few minutes, then try again or start the registration again from {lms}. If "
        "it keeps failing, send this page to whoever runs {lms}.",
    ),
    "response-json": (
        "Your LMS accepted the registration, but its answer could not be read.",
        "Look in {lms}'s list of external tools for this tool. If it is there, send its Client "
        "ID to the tool's owner; if not, start a new registration from {lms}.",
    ),
    "response-client-id": (
        "Your LMS accepted the registration, but did not say which ID it gave the tool.",
        "Look in {lms}'s list of external tools for this tool. If it is there, send its Client "
        "ID to the tool's owner; if not, start a new registration from {lms}.",
    ),
    "worker-stopped": (
        "Gatehouse stopped while waiting for your LMS's answer, so it does not know whether "
        "the tool was registered.",
        "Look in {lms}'s list of external tools for this tool. If it is there, send its Client "
        "ID to the tool's owner; if not, start a new registration from {lms}.",
    ),
    # --- This registration attempt ---
    "registration-id": (
        "This registration link is not known to Gatehouse.",
        "Close this window and start the registration again from {lms}.",
    ),
    "registration-expired": (
        "This registration was not finished in time, so it expired. Nothing was sent to your LMS.",
        "Close this window and start the registration again from {lms}.",
    ),
    "registration-held": (
        "Gatehouse no longer holds the details of this registration.",
        "Close this window and start the registration again from {lms}.",
    ),
    "done-link": (
        "This link was already used or is not valid. The registration itself is recorded.",
        "If {lms}'s registration window is still open, close it.",
    ),
    "token-once": (
        "This registration was already sent to your LMS once, from another window or an "
        "earlier try.",
        "Close this window and look in {lms} for the tool. To register again, start a new "
        "registration from {lms}.",
    ),
    "single-post": (
        "This registration was already handled.",
        "Close this window and look in {lms} for the tool. To register again, start a new "
        "registration from {lms}.",
    ),
    # --- Launches: a teacher or student opened the tool ---
    "unknown-platform": (
        "This tool is not set up for your school's LMS yet.",
        "Tell your teacher or your LMS's administrator that the tool could not be opened.",
    ),
    "ambiguous-platform": (
        "The tool is set up more than once for your school and could not tell which set-up to use.",
        "Tell your teacher or your LMS's administrator that the tool could not be opened.",
    ),
    "platform-inactive": (
        "This tool is not switched on for your school yet.",
        "Try again later. If it keeps happening, tell your teacher or your LMS's administrator.",
    ),
    "deployment-pending": (
        "This tool is waiting for its provider's approval for your school.",
        "Try again later. If it keeps happening, tell your teacher or your LMS's administrator.",
    ),
    "deployment-unknown": (
        "This tool is not set up for this part of your school's LMS.",
        "Tell your teacher or your LMS's administrator that the tool could not be opened.",
    ),
    "state-replayed": (
        "This link to the tool was already used.",
        "Go back to your course and open the tool again from there. Reloading this page does "
        "not work.",
    ),
    "state-expired": (
        "Opening the tool took too long, so Gatehouse stopped for your safety.",
        "Go back to your course and open the tool again.",
    ),
    "state-unknown": (
        "This page was not opened the usual way, from your course.",
        "Go back to your course and open the tool from there.",
    ),
    "launch-not-bound": (
        "The tool can only be opened in the browser that started opening it.",
        "Go back to your course in this browser and open the tool again. A link someone "
        "sent you does not open the tool.",
    ),
    "launch-cookies-blocked": (
        "Your browser blocked something the tool needs to open safely.",
        "Allow cookies for this site, then open the tool again from your course.",
    ),
    "target-link-uri": (
        "The link to the tool in your course is not set up correctly.",
        "Tell your teacher or your LMS's administrator that the tool's link does not work.",
    ),
    "target-link-uri-mismatch": (
        "Your LMS sent you to a different place than the one it first asked for.",
        "Go back to your course and open the tool again. If it keeps happening, tell your "
        "LMS's administrator.",
    ),
    "platform-authorization-endpoint": (
        "The tool's set-up for your school is incomplete.",
        "Tell your teacher or your LMS's administrator that the tool could not be opened.",
    ),
    "platform-error": (
        "Your LMS did not let the tool know who you are.",
        "Sign in to your LMS in this browser, then open the tool again from your course.",
    ),
    "platform-jwks": (
        "The tool could not check that this request really came from your LMS.",
        "Try again in a few minutes. If it keeps happening, tell your LMS's administrator.",
    ),
    "platform-key": (
        "The tool could not check that this request really came from your LMS.",
        "Tell your teacher or your LMS's administrator that the tool could not be opened.",
    ),
    "unknown-kid": (
        "The tool could not check that this request really came from your LMS.",
        "Try again in a few minutes. If it keeps happening, tell your LMS's administrator.",
    ),
    "id-token-format": (
        "Your LMS's message to the tool could not be read.",
        "Go back to your course and open the tool again. If it keeps happening, tell your "
        "LMS's administrator.",
    ),
    "id-token-alg": (
        "Your LMS's message to the tool was not protected in the way the tool requires.",
        "Tell your teacher or your LMS's administrator that the tool could not be opened.",
    ),
    "id-token-signature": (
        "The tool could not confirm that this message really came from your LMS.",
        "Go back to your course and open the tool again. If it keeps happening, tell your "
        "LMS's administrator.",
    ),
    "id-token-iss": (
        "This message came from a different LMS than the one the tool expected.",
        "Open the tool from your own course. If it keeps happening, tell your LMS's administrator.",
    ),
    "id-token-aud": (
        "Your LMS's message was meant for a different tool.",
        "Tell your teacher or your LMS's administrator that the tool could not be opened.",
    ),
    "id-token-azp": (
        "Your LMS's message was meant for a different tool.",
        "Tell your teacher or your LMS's administrator that the tool could not be opened.",
    ),
    "id-token-times": (
        "Your LMS's message did not say when it was sent.",
        "Tell your teacher or your LMS's administrator that the tool could not be opened.",
    ),
    "id-token-expired": (
        "Your LMS's message arrived too late to be accepted.",
        "Go back to your course and open the tool again. If it keeps happening, a clock may "
        "be wrong: tell your LMS's administrator.",
    ),
    "id-token-iat": (
        "Your LMS's message seems to come from the future: a clock is wrong.",
        "Tell your LMS's administrator that the LMS's clock may be wrong.",
    ),
    "id-token-nbf": (
        "Your LMS's message is not valid yet: a clock is wrong.",
        "Tell your LMS's administrator that the LMS's clock may be wrong.",
    ),
    "id-token-nonce": (
        "This message does not belong to the request your browser started.",
        "Go back to your course and open the tool again.",
    ),
    "lti-version": (
        "Your LMS uses a version of the tool connection this tool does not support.",
        "Tell your teacher or your LMS's administrator that the tool could not be opened.",
    ),
    "lti-message-type": (
        "Your LMS asked the tool for something it does not do.",
        "Use the tool from a link or activity in your course. If that fails too, tell your "
        "LMS's administrator.",
    ),
    "lti-deployment-id": (
        "Your LMS's message is missing information the tool needs.",
        "Tell your teacher or your LMS's administrator that the tool could not be opened.",
    ),
    "lti-roles": (
        "Your LMS did not say whether you are a teacher or a student.",
        "Tell your teacher or your LMS's administrator that the tool could not be opened.",
    ),
    "lti-resource-link": (
        "Your LMS's message is missing information the tool needs.",
        "Tell your teacher or your LMS's administrator that the tool could not be opened.",
    ),
    "lti-deep-linking-settings": (
        "Your LMS did not say where to return the content you choose.",
        "Tell your LMS's administrator that adding content from this tool does not work.",
    ),
    "lti-target-link-uri": (
        "Your LMS's message is missing information the tool needs.",
        "Tell your teacher or your LMS's administrator that the tool could not be opened.",
    ),
    # --- Error kinds, for errors that carry no rule ---
    "RegistrationError": (
        "The registration could not be finished.",
        "Start the registration again from {lms}. If it fails again, send this page to the "
        "tool's owner.",
    ),
    "MissingParameter": (
        "This address is meant to be pasted into your LMS, not opened on its own.",
        "In {lms}, add a new LTI 1.3 tool by dynamic registration and paste this page's "
        "address there.",
    ),
    "UnsafeURL": (
        "Gatehouse refused to contact the address your LMS gave it.",
        "Send this page to your LMS's support, then start the registration again.",
    ),
    "PlatformUnreachable": (
        "Gatehouse could not reach your LMS.",
        "Check that {lms} is online, then try again or start the registration again from {lms}.",
    ),
    "PlatformConfigError": (
        "Your LMS sent settings Gatehouse cannot use.",
        "Send this page to your LMS's support, then start the registration again.",
    ),
    "PlatformRefused": (
        "Your LMS answered with an error.",
        "Start the registration again from {lms}. If it fails again, send this page to the "
        "tool's owner.",
    ),
    "InvalidRegistrationResponse": (
        "Your LMS accepted the registration, but its answer could not be used.",
        "Look in {lms}'s list of external tools for this tool and send its Client ID to the "
        "tool's owner.",
    ),
    "OutcomeUnknown": (
        "Your LMS may have registered the tool, but its answer never reached Gatehouse.",
        "Look in {lms}'s list of external tools for this tool. If it is there, send its Client "
        "ID to the tool's owner; if not, start a new registration from {lms}.",
    ),
    "InsecureToolURL": (
        "Gatehouse stopped before contacting your LMS: the tool's own address is not set up "
        "securely yet.",
        "Send this page to the tool's owner.",
    ),
    "RegistrationRefused": (
        "The tool's owner does not accept this registration.",
        "Contact the tool's owner.",
    ),
    "AlreadyHandled": (
        "This registration was already handled.",
        "Close this window and look in {lms} for the tool.",
    ),
    "TokenSpent": (
        "This registration was already sent to your LMS once.",
        "Close this window and look in {lms} for the tool.",
    ),
    "RegistrationGone": (
        "This registration is no longer open.",
        "Close this window and start the registration again from {lms}.",
    ),
    "RegistrationExpired": (
        "This registration was not finished in time, so it expired.",
        "Close this window and start the registration again from {lms}.",
    ),
    "UnknownRegistration": (
        "This registration link is not known to Gatehouse.",
        "Close this window and start the registration again from {lms}.",
    ),
    "LaunchError": (
        "The tool could not be opened.",
        "Go back to your course and open the tool again. If it keeps happening, tell your "
        "teacher or your LMS's administrator.",
    ),
    "UnknownPlatform": (
        "This tool is not set up for your school's LMS yet.",
        "Tell your teacher or your LMS's administrator that the tool could not be opened.",
    ),
    "InactivePlatform": (
        "This tool is not switched on for your school yet.",
        "Try again later.",
    ),
    "InvalidLaunch": (
        "The tool could not confirm that this request really came from your LMS.",
        "Go back to your course and open the tool again.",
    ),
    "DeploymentNotApproved": (
        "This tool is waiting for its provider's approval for your school.",
        "Try again later.",
    ),
    "DeploymentRefused": (
        "This tool is not set up for this part of your school's LMS.",
        "Tell your teacher or your LMS's administrator that the tool could not be opened.",
    ),
}


# Pages for HTTP errors outside the registration and the launch (app/web/errors.py): the
# title, a plain first line, what to do. A view's own words replace the first line.
HTTP_PAGES: dict[int, tuple[str, str, str]] = {
    400: (
        "This request could not be understood",
        "Something in the request was missing or not as expected.",
        "Go back and try again. If you came from your LMS, start again from your LMS.",
    ),
    403: (
        "You cannot open this page",
        "This page needs a permission you do not have.",
        "Sign in with an account that has access, or ask the tool's owner for it.",
    ),
    404: (
        "This page does not exist",
        "The address may be mistyped, or the link that led here is out of date.",
        "Check the address, or start from the home page. If your LMS sent you here, start the "
        "registration again from your LMS.",
    ),
    405: (
        "This page cannot be opened this way",
        "The address exists, but it does not answer this kind of request.",
        "Use the link or button that leads to it, or start from the home page.",
    ),
    413: (
        "What was sent is too large",
        "Gatehouse accepts only small requests here.",
        "Go back and send less, or start from the home page.",
    ),
    429: (
        "Too many requests",
        "This address sent more requests than Gatehouse accepts in a short time.",
        "Wait a minute, then try again.",
    ),
    500: (
        "Something went wrong on our side",
        "Gatehouse hit an unexpected error. Nothing was registered.",
        "Please try again in a moment, and tell the tool's owner if it happens again.",
    ),
}
# What to do on any other HTTP error page.
HTTP_WHAT_TO_DO = "Go back and try again, or start from the home page."


@dataclass(frozen=True)
class PlainError:
    """What an error page shows: the plain words first, the technical details after."""

    first_line: str
    what_to_do: str
    # The LMS's product name and where in it a registration starts, when Gatehouse knows them.
    lms: str | None
    where: str | None
    spec: tuple[str, str] | None


def _status_class(status: int | None) -> str | None:
    # The same split as the protocol layer's own hints (app/lti/registration.py refusal_hint).
    if status is None:
        return None
    if status in (401, 403):
        return "token"
    if status == 404:
        return "not-found"
    if status in (400, 422):
        return "rejected"
    if status >= 500:
        return "server"
    return None


def words_for(error: dict, family_code: str | None = None) -> PlainError:
    """Return the plain words for a stored or fresh error record (`RegistrationError.as_dict`)."""
    rule, kind = error.get("rule"), error.get("kind") or "RegistrationError"
    keys = []
    status_class = _status_class(error.get("lms_status"))
    if rule and status_class and kind != "OutcomeUnknown":
        keys.append(f"{rule}:{status_class}")
    if kind == "OutcomeUnknown" and rule not in ("response-json", "response-client-id"):
        # The transport's failure (a timeout, a reset) matters less than what it means now.
        keys.append(kind)
    keys += [rule, kind, "RegistrationError"]  # a kind stored by an older release
    first_line, what_to_do = next(WORDS[key] for key in keys if key in WORDS)
    family = lms_families.for_family(family_code)
    if family is lms_families.GENERIC:
        family = None
    lms = family.name if family is not None else "your LMS"
    return PlainError(
        first_line=_sentence(first_line.format(lms=lms)),
        what_to_do=_sentence(what_to_do.format(lms=lms)),
        lms=family.name if family is not None else None,
        where=family.where_to_paste if family is not None else None,
        spec=spec_reference(rule),
    )


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]
