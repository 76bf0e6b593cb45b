"""What a registration or launch error page says first, in plain words: one table.

The person in front of a registration error is an LMS administrator, of a launch error a
teacher or student: neither knows the LTI specification. Each error rule (and each error kind
that has no rule) has one entry here: (first line, what to do). The protocol layer's own
sentence (`error.detail`), the rule, the spec section and the LMS's answer go under "Technical
details" on the page.

The strings are plain literals marked with `N_` for the catalogues (README, "Languages"), and
shown in the page's language (`translate`); `{lms}` is the LMS's product name when Gatehouse
knows it ("your LMS", translated, otherwise), filled in after the translation. The test in
tests/test_error_words.py fails when a rule the code can raise has no entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..lti import lms as lms_families
from ..lti.errors import spec_reference
from ..lti.text import N_
from .i18n import translate

# Sentences repeat below: each entry is kept whole so a translator sees full sentences.
WORDS: dict[str, tuple[str, str]] = {
    # --- The registration URL was opened the wrong way ---
    "openid-configuration-required": (
        N_("This address is meant to be pasted into your LMS, not opened on its own."),
        N_(
            "In {lms}, add a new LTI 1.3 tool by dynamic registration and paste this page's "
            "address there."
        ),
    ),
    "missing-parameter": (
        N_("The tool was opened without the details your LMS normally sends."),
        N_("Open the tool from a link or an activity in your course."),
    ),
    "url-absolute": (
        N_("The address your LMS gave Gatehouse is not a complete web address."),
        N_(
            "Start the registration again from {lms}. If it happens again, ask your LMS's support "
            "whether its registration feature is set up correctly."
        ),
    ),
    "url-syntax": (
        N_("An address your LMS gave Gatehouse is not a valid web address."),
        N_(
            "Start the registration again from {lms}. If it happens again, send this page to your "
            "LMS's support."
        ),
    ),
    "url-scheme": (
        N_("An address your LMS gave Gatehouse is not a web address."),
        N_(
            "Start the registration again from {lms}. If it happens again, send this page to your "
            "LMS's support."
        ),
    ),
    "url-userinfo": (
        N_("An address your LMS gave Gatehouse contains a user name or password."),
        N_(
            "Ask your LMS's support to remove the user name and password from its web address, "
            "then start the registration again."
        ),
    ),
    "url-host": (
        N_("An address your LMS gave Gatehouse has a server name Gatehouse cannot use."),
        N_("Send this page to your LMS's support, then start the registration again from {lms}."),
    ),
    "https-only": (
        N_(
            "Your LMS is not using a secure (https) address, and Gatehouse only connects to secure "
            "addresses."
        ),
        N_(
            "Ask whoever runs {lms} to serve it over https, then start the registration again. "
            "If this LMS is only for testing, the tool's owner can allow insecure LMSes."
        ),
    ),
    "public-address-only": (
        N_("Your LMS is on a private network address that Gatehouse is not allowed to reach."),
        N_(
            "Register from an LMS that can be reached from the internet, or ask the tool's owner "
            "about registering a private LMS."
        ),
    ),
    "request-header": (
        N_("Gatehouse refused to send a request containing unusual characters from your LMS."),
        N_(
            "Start the registration again from {lms}. If it happens again, send this page to the "
            "tool's owner."
        ),
    ),
    "redirect-downgrade": (
        N_("Your LMS sent Gatehouse from a secure address to an insecure one."),
        N_(
            "Ask whoever runs {lms} to keep all its addresses on https, then start the "
            "registration again."
        ),
    ),
    # --- Gatehouse could not reach the LMS ---
    "connection": (
        N_("Gatehouse could not connect to your LMS."),
        N_(
            "Check that {lms} is online and reachable from the internet, then try again or start "
            "the registration again from {lms}. If it keeps failing, send this page to whoever "
            "runs {lms}."
        ),
    ),
    "connect-timeout": (
        N_("Your LMS took too long to accept Gatehouse's connection."),
        N_(
            "Wait a few minutes, then try again or start the registration again from {lms}. If "
            "it keeps failing, check that {lms} can be reached from the internet."
        ),
    ),
    "deadline": (
        N_("Your LMS took too long to answer."),
        N_(
            "Wait a few minutes, then try again or start the registration again from {lms}. If "
            "it keeps failing, send this page to whoever runs {lms}."
        ),
    ),
    "dns": (
        N_("Gatehouse could not find your LMS's server on the internet."),
        N_(
            "Check that {lms}'s web address is public and spelled correctly, then start the "
            "registration again."
        ),
    ),
    "tls": (
        N_(
            "Gatehouse could not open a secure connection to your LMS: its security certificate "
            "was not accepted."
        ),
        N_(
            "Ask whoever runs {lms} to install a valid certificate (for example a current one "
            "from a public authority), then start the registration again."
        ),
    ),
    "http-protocol": (
        N_("Your LMS's server did not answer like a web server."),
        N_(
            "Check that the address belongs to {lms}, then start the registration again. If it "
            "keeps failing, send this page to whoever runs {lms}."
        ),
    ),
    "response-size": (
        N_("Your LMS sent an answer much larger than expected."),
        N_(
            "Start the registration again from {lms}. If it happens again, send this page to your "
            "LMS's support."
        ),
    ),
    "redirect-limit": (
        N_("Your LMS kept sending Gatehouse on to other addresses."),
        N_(
            "Check that {lms} is working, then start the registration again. If it keeps "
            "failing, send this page to whoever runs {lms}."
        ),
    ),
    "redirect-loop": (
        N_("Your LMS sent Gatehouse round in a circle of addresses."),
        N_(
            "Check that {lms} is working, then start the registration again. If it keeps "
            "failing, send this page to whoever runs {lms}."
        ),
    ),
    # --- The LMS's settings (its published configuration) ---
    "config-json": (
        N_("Your LMS did not send its settings in a form Gatehouse can read."),
        N_(
            "Start the registration again from {lms}'s own registration screen. If it keeps "
            "failing, send this page to your LMS's support."
        ),
    ),
    "required-field": (
        N_("Your LMS's settings are missing something the tool needs."),
        N_(
            "Send this page to your LMS's support: {lms} may need an update before it can "
            "register this tool this way."
        ),
    ),
    "endpoint-url": (
        N_("Your LMS's settings contain an address that is not a complete web address."),
        N_("Send this page to your LMS's support, then start the registration again."),
    ),
    "issuer-url": (
        N_("Your LMS's settings do not give a usable web address for the LMS itself."),
        N_(
            "Ask whoever runs {lms} to check its site address setting, then start the "
            "registration again."
        ),
    ),
    "issuer-https": (
        N_("Your LMS identifies itself with an address that is not secure (not https)."),
        N_(
            "Ask whoever runs {lms} to use its https address as its site address, then start the "
            "registration again."
        ),
    ),
    "issuer-no-query": (
        N_("Your LMS identifies itself with an address Gatehouse cannot accept."),
        N_(
            "Ask whoever runs {lms} to check its site address setting, then start the "
            "registration again."
        ),
    ),
    "issuer-host-match": (
        N_(
            "Your LMS sent settings that seem to belong to a different site, so Gatehouse did not "
            "trust them."
        ),
        N_(
            "Start the registration again from inside {lms} itself. If it happens again, check "
            "that {lms}'s site address matches the address you use to reach it."
        ),
    ),
    "issuer-prefix": (
        N_("Your LMS's settings are at an address that does not match the LMS's own address."),
        N_(
            "Ask whoever runs {lms} to check its site address setting, then start again. The "
            "tool's owner can also relax this check."
        ),
    ),
    "rs256": (
        N_("Your LMS does not offer the security method this tool needs."),
        N_(
            "Send this page to your LMS's support: {lms} may need an update to register LTI 1.3 "
            "tools."
        ),
    ),
    "private-key-jwt": (
        N_("Your LMS does not offer the sign-in method this tool needs for its services."),
        N_(
            "Send this page to your LMS's support: {lms} may need an update to register LTI 1.3 "
            "tools."
        ),
    ),
    # --- Decisions of the tool's owner ---
    "blocked-issuer": (
        N_("The tool's owner does not accept registrations from this LMS."),
        N_("Contact the tool's owner if you think this is a mistake."),
    ),
    "issuer-not-allowed": (
        N_(
            "This tool accepts registrations only from LMSes its owner has approved, and this "
            "one is not on the list yet."
        ),
        N_(
            "Contact the tool's owner to have your LMS approved, then start the registration again."
        ),
    ),
    "invitation-required": (
        N_("This tool can only be registered with a personal invitation link."),
        N_("Ask the tool's owner for your invitation link and paste that into {lms} instead."),
    ),
    "invitation-invalid": (
        N_("This invitation link cannot be used any more."),
        N_(
            "Ask the tool's owner for a new invitation link, then start the registration again "
            "from {lms}."
        ),
    ),
    "tool-https": (
        N_(
            "Gatehouse stopped before contacting your LMS: the tool's own address is not set up "
            "securely yet."
        ),
        N_(
            "Send this page to the tool's owner. Once they have fixed it, start the registration "
            "again from {lms}."
        ),
    ),
    # --- The LMS answered the registration ---
    "platform-response": (
        N_("Your LMS answered with an error."),
        N_(
            "Start the registration again from {lms}. If it fails again, send this page to the "
            "tool's owner."
        ),
    ),
    "platform-response:token": (
        N_(
            "Your LMS did not accept Gatehouse's request: its registration permission may have "
            "expired (it lasts about an hour)."
        ),
        N_("Start the registration again from {lms}, and finish it within the hour."),
    ),
    "platform-response:not-found": (
        N_("Your LMS did not recognise the registration request."),
        N_("Start the registration again from {lms}."),
    ),
    "platform-response:rejected": (
        N_("Your LMS turned down the tool's registration details."),
        N_(
            "Send this page to the tool's owner so they can adjust the tool's settings, then "
            "start the registration again from {lms}."
        ),
    ),
    "platform-response:server": (
        N_("Your LMS had an internal problem while answering."),
        N_(
            "Wait a few minutes, then try again or start the registration again from {lms}. If "
            "it keeps failing, send this page to whoever runs {lms}."
        ),
    ),
    "response-json": (
        N_("Your LMS accepted the registration, but its answer could not be read."),
        N_(
            "Look in {lms}'s list of external tools for this tool. If it is there, send its Client "
            "ID to the tool's owner; if not, start a new registration from {lms}."
        ),
    ),
    "response-client-id": (
        N_("Your LMS accepted the registration, but did not say which ID it gave the tool."),
        N_(
            "Look in {lms}'s list of external tools for this tool. If it is there, send its Client "
            "ID to the tool's owner; if not, start a new registration from {lms}."
        ),
    ),
    "worker-stopped": (
        N_(
            "Gatehouse stopped while waiting for your LMS's answer, so it does not know whether "
            "the tool was registered."
        ),
        N_(
            "Look in {lms}'s list of external tools for this tool. If it is there, send its Client "
            "ID to the tool's owner; if not, start a new registration from {lms}."
        ),
    ),
    # --- This registration attempt ---
    "registration-id": (
        N_("This registration link is not known to Gatehouse."),
        N_("Close this window and start the registration again from {lms}."),
    ),
    "registration-expired": (
        N_(
            "This registration was not finished in time, so it expired. Nothing was sent to your "
            "LMS."
        ),
        N_("Close this window and start the registration again from {lms}."),
    ),
    "registration-held": (
        N_("Gatehouse no longer holds the details of this registration."),
        N_("Close this window and start the registration again from {lms}."),
    ),
    "done-link": (
        N_("This link was already used or is not valid. The registration itself is recorded."),
        N_("If {lms}'s registration window is still open, close it."),
    ),
    "token-once": (
        N_(
            "This registration was already sent to your LMS once, from another window or an "
            "earlier try."
        ),
        N_(
            "Close this window and look in {lms} for the tool. To register again, start a new "
            "registration from {lms}."
        ),
    ),
    "single-post": (
        N_("This registration was already handled."),
        N_(
            "Close this window and look in {lms} for the tool. To register again, start a new "
            "registration from {lms}."
        ),
    ),
    # --- Launches: a teacher or student opened the tool ---
    "unknown-platform": (
        N_("This tool is not set up for your school's LMS yet."),
        N_("Tell your teacher or your LMS's administrator that the tool could not be opened."),
    ),
    "ambiguous-platform": (
        N_(
            "The tool is set up more than once for your school and could not tell which set-up to "
            "use."
        ),
        N_("Tell your teacher or your LMS's administrator that the tool could not be opened."),
    ),
    "platform-inactive": (
        N_("This tool is not switched on for your school yet."),
        N_(
            "Try again later. If it keeps happening, tell your teacher or your LMS's administrator."
        ),
    ),
    "deployment-pending": (
        N_("This tool is waiting for its provider's approval for your school."),
        N_(
            "Try again later. If it keeps happening, tell your teacher or your LMS's administrator."
        ),
    ),
    "deployment-unknown": (
        N_("This tool is not set up for this part of your school's LMS."),
        N_("Tell your teacher or your LMS's administrator that the tool could not be opened."),
    ),
    "state-replayed": (
        N_("This link to the tool was already used."),
        N_(
            "Go back to your course and open the tool again from there. Reloading this page does "
            "not work."
        ),
    ),
    "state-expired": (
        N_("Opening the tool took too long, so Gatehouse stopped for your safety."),
        N_("Go back to your course and open the tool again."),
    ),
    "state-unknown": (
        N_("This page was not opened the usual way, from your course."),
        N_("Go back to your course and open the tool from there."),
    ),
    "launch-not-bound": (
        N_("The tool can only be opened in the browser that started opening it."),
        N_(
            "Go back to your course in this browser and open the tool again. A link someone "
            "sent you does not open the tool."
        ),
    ),
    "launch-cookies-blocked": (
        N_("Your browser blocked something the tool needs to open safely."),
        N_("Allow cookies for this site, then open the tool again from your course."),
    ),
    "target-link-uri": (
        N_("The link to the tool in your course is not set up correctly."),
        N_("Tell your teacher or your LMS's administrator that the tool's link does not work."),
    ),
    "target-link-uri-mismatch": (
        N_("Your LMS sent you to a different place than the one it first asked for."),
        N_(
            "Go back to your course and open the tool again. If it keeps happening, tell your "
            "LMS's administrator."
        ),
    ),
    "platform-authorization-endpoint": (
        N_("The tool's set-up for your school is incomplete."),
        N_("Tell your teacher or your LMS's administrator that the tool could not be opened."),
    ),
    "platform-error": (
        N_("Your LMS did not let the tool know who you are."),
        N_("Sign in to your LMS in this browser, then open the tool again from your course."),
    ),
    "platform-jwks": (
        N_("The tool could not check that this request really came from your LMS."),
        N_("Try again in a few minutes. If it keeps happening, tell your LMS's administrator."),
    ),
    "platform-key": (
        N_("The tool could not check that this request really came from your LMS."),
        N_("Tell your teacher or your LMS's administrator that the tool could not be opened."),
    ),
    "unknown-kid": (
        N_("The tool could not check that this request really came from your LMS."),
        N_("Try again in a few minutes. If it keeps happening, tell your LMS's administrator."),
    ),
    "id-token-format": (
        N_("Your LMS's message to the tool could not be read."),
        N_(
            "Go back to your course and open the tool again. If it keeps happening, tell your "
            "LMS's administrator."
        ),
    ),
    "id-token-alg": (
        N_("Your LMS's message to the tool was not protected in the way the tool requires."),
        N_("Tell your teacher or your LMS's administrator that the tool could not be opened."),
    ),
    "id-token-signature": (
        N_("The tool could not confirm that this message really came from your LMS."),
        N_(
            "Go back to your course and open the tool again. If it keeps happening, tell your "
            "LMS's administrator."
        ),
    ),
    "id-token-iss": (
        N_("This message came from a different LMS than the one the tool expected."),
        N_(
            "Open the tool from your own course. If it keeps happening, tell your LMS's "
            "administrator."
        ),
    ),
    "id-token-aud": (
        N_("Your LMS's message was meant for a different tool."),
        N_("Tell your teacher or your LMS's administrator that the tool could not be opened."),
    ),
    "id-token-azp": (
        N_("Your LMS's message was meant for a different tool."),
        N_("Tell your teacher or your LMS's administrator that the tool could not be opened."),
    ),
    "id-token-times": (
        N_("Your LMS's message did not say when it was sent."),
        N_("Tell your teacher or your LMS's administrator that the tool could not be opened."),
    ),
    "id-token-expired": (
        N_("Your LMS's message arrived too late to be accepted."),
        N_(
            "Go back to your course and open the tool again. If it keeps happening, a clock may "
            "be wrong: tell your LMS's administrator."
        ),
    ),
    "id-token-iat": (
        N_("Your LMS's message seems to come from the future: a clock is wrong."),
        N_("Tell your LMS's administrator that the LMS's clock may be wrong."),
    ),
    "id-token-nbf": (
        N_("Your LMS's message is not valid yet: a clock is wrong."),
        N_("Tell your LMS's administrator that the LMS's clock may be wrong."),
    ),
    "id-token-nonce": (
        N_("This message does not belong to the request your browser started."),
        N_("Go back to your course and open the tool again."),
    ),
    "lti-version": (
        N_("Your LMS uses a version of the tool connection this tool does not support."),
        N_("Tell your teacher or your LMS's administrator that the tool could not be opened."),
    ),
    "lti-message-type": (
        N_("Your LMS asked the tool for something it does not do."),
        N_(
            "Use the tool from a link or activity in your course. If that fails too, tell your "
            "LMS's administrator."
        ),
    ),
    "lti-deployment-id": (
        N_("Your LMS's message is missing information the tool needs."),
        N_("Tell your teacher or your LMS's administrator that the tool could not be opened."),
    ),
    "lti-roles": (
        N_("Your LMS did not say whether you are a teacher or a student."),
        N_("Tell your teacher or your LMS's administrator that the tool could not be opened."),
    ),
    "lti-resource-link": (
        N_("Your LMS's message is missing information the tool needs."),
        N_("Tell your teacher or your LMS's administrator that the tool could not be opened."),
    ),
    "lti-deep-linking-settings": (
        N_("Your LMS did not say where to return the content you choose."),
        N_("Tell your LMS's administrator that adding content from this tool does not work."),
    ),
    "lti-target-link-uri": (
        N_("Your LMS's message is missing information the tool needs."),
        N_("Tell your teacher or your LMS's administrator that the tool could not be opened."),
    ),
    # --- Error kinds, for errors that carry no rule ---
    "RegistrationError": (
        N_("The registration could not be finished."),
        N_(
            "Start the registration again from {lms}. If it fails again, send this page to the "
            "tool's owner."
        ),
    ),
    "MissingParameter": (
        N_("This address is meant to be pasted into your LMS, not opened on its own."),
        N_(
            "In {lms}, add a new LTI 1.3 tool by dynamic registration and paste this page's "
            "address there."
        ),
    ),
    "UnsafeURL": (
        N_("Gatehouse refused to contact the address your LMS gave it."),
        N_("Send this page to your LMS's support, then start the registration again."),
    ),
    "PlatformUnreachable": (
        N_("Gatehouse could not reach your LMS."),
        N_(
            "Check that {lms} is online, then try again or start the registration again from {lms}."
        ),
    ),
    "PlatformConfigError": (
        N_("Your LMS sent settings Gatehouse cannot use."),
        N_("Send this page to your LMS's support, then start the registration again."),
    ),
    "PlatformRefused": (
        N_("Your LMS answered with an error."),
        N_(
            "Start the registration again from {lms}. If it fails again, send this page to the "
            "tool's owner."
        ),
    ),
    "InvalidRegistrationResponse": (
        N_("Your LMS accepted the registration, but its answer could not be used."),
        N_(
            "Look in {lms}'s list of external tools for this tool and send its Client ID to the "
            "tool's owner."
        ),
    ),
    "OutcomeUnknown": (
        N_("Your LMS may have registered the tool, but its answer never reached Gatehouse."),
        N_(
            "Look in {lms}'s list of external tools for this tool. If it is there, send its Client "
            "ID to the tool's owner; if not, start a new registration from {lms}."
        ),
    ),
    "InsecureToolURL": (
        N_(
            "Gatehouse stopped before contacting your LMS: the tool's own address is not set up "
            "securely yet."
        ),
        N_("Send this page to the tool's owner."),
    ),
    "RegistrationRefused": (
        N_("The tool's owner does not accept this registration."),
        N_("Contact the tool's owner."),
    ),
    "AlreadyHandled": (
        N_("This registration was already handled."),
        N_("Close this window and look in {lms} for the tool."),
    ),
    "TokenSpent": (
        N_("This registration was already sent to your LMS once."),
        N_("Close this window and look in {lms} for the tool."),
    ),
    "RegistrationGone": (
        N_("This registration is no longer open."),
        N_("Close this window and start the registration again from {lms}."),
    ),
    "RegistrationExpired": (
        N_("This registration was not finished in time, so it expired."),
        N_("Close this window and start the registration again from {lms}."),
    ),
    "UnknownRegistration": (
        N_("This registration link is not known to Gatehouse."),
        N_("Close this window and start the registration again from {lms}."),
    ),
    "LaunchError": (
        N_("The tool could not be opened."),
        N_(
            "Go back to your course and open the tool again. If it keeps happening, tell your "
            "teacher or your LMS's administrator."
        ),
    ),
    "UnknownPlatform": (
        N_("This tool is not set up for your school's LMS yet."),
        N_("Tell your teacher or your LMS's administrator that the tool could not be opened."),
    ),
    "InactivePlatform": (
        N_("This tool is not switched on for your school yet."),
        N_("Try again later."),
    ),
    "InvalidLaunch": (
        N_("The tool could not confirm that this request really came from your LMS."),
        N_("Go back to your course and open the tool again."),
    ),
    "DeploymentNotApproved": (
        N_("This tool is waiting for its provider's approval for your school."),
        N_("Try again later."),
    ),
    "DeploymentRefused": (
        N_("This tool is not set up for this part of your school's LMS."),
        N_("Tell your teacher or your LMS's administrator that the tool could not be opened."),
    ),
}


# Pages for HTTP errors outside the registration and the launch (app/web/errors.py): the
# title, a plain first line, what to do. A view's own words replace the first line.
HTTP_PAGES: dict[int, tuple[str, str, str]] = {
    400: (
        N_("This request could not be understood"),
        N_("Something in the request was missing or not as expected."),
        N_("Go back and try again. If you came from your LMS, start again from your LMS."),
    ),
    403: (
        N_("You cannot open this page"),
        N_("This page needs a permission you do not have."),
        N_("Sign in with an account that has access, or ask the tool's owner for it."),
    ),
    404: (
        N_("This page does not exist"),
        N_("The address may be mistyped, or the link that led here is out of date."),
        N_(
            "Check the address, or start from the home page. If your LMS sent you here, start the "
            "registration again from your LMS."
        ),
    ),
    405: (
        N_("This page cannot be opened this way"),
        N_("The address exists, but it does not answer this kind of request."),
        N_("Use the link or button that leads to it, or start from the home page."),
    ),
    413: (
        N_("What was sent is too large"),
        N_("Gatehouse accepts only small requests here."),
        N_("Go back and send less, or start from the home page."),
    ),
    429: (
        N_("Too many requests"),
        N_("This address sent more requests than Gatehouse accepts in a short time."),
        N_("Wait a minute, then try again."),
    ),
    500: (
        N_("Something went wrong on our side"),
        N_("Gatehouse hit an unexpected error. Nothing was registered."),
        N_("Please try again in a moment, and tell the tool's owner if it happens again."),
    ),
}
# What to do on any other HTTP error page.
HTTP_WHAT_TO_DO = N_("Go back and try again, or start from the home page.")


# TRANSLATORS: the name of an LMS Gatehouse does not know, where a sentence puts it after a
# preposition: a translation of the words above may write {lms_dat} for it instead of {lms}
# (German "in Ihrem LMS", where {lms} is "Ihr LMS").
YOUR_LMS_AFTER_PREPOSITION = N_("your LMS (after a preposition)")


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
    if family is not None:
        lms = lms_dat = family.name
    else:
        lms, lms_dat = translate(N_("your LMS")), translate(YOUR_LMS_AFTER_PREPOSITION)
    return PlainError(
        first_line=_sentence(translate(first_line).format(lms=lms, lms_dat=lms_dat)),
        what_to_do=_sentence(translate(what_to_do).format(lms=lms, lms_dat=lms_dat)),
        lms=family.name if family is not None else None,
        where=translate(family.where_to_paste) if family is not None else None,
        spec=spec_reference(rule),
    )


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]
