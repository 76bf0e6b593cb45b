"""Who sees what after a launch: LTI 1.3 roles read once each, staff told from learners, and the
LMS's version shown as its release (Moodle's build number mapped through its branching dates)."""

from types import SimpleNamespace

import pytest

from app.domain.launch import verified_page
from app.lti.launch import CLAIM_DEPLOYMENT_ID, CLAIM_MESSAGE_TYPE, CLAIM_ROLES, CLAIM_TOOL_PLATFORM
from app.lti.lms import GENERIC, for_family
from app.lti.lms.moodle import release_for_build
from app.lti.roles import display_names, is_staff, parse_role, parse_roles

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
CONTEXT = LIS + "membership#"
INSTITUTION = LIS + "institution/person#"
SYSTEM = LIS + "system/person#"


@pytest.mark.parametrize(
    ("uri", "vocabulary", "display", "staff"),
    [
        (CONTEXT + "Instructor", "context", "Instructor", True),
        (CONTEXT + "Learner", "context", "Learner", False),
        (CONTEXT + "Administrator", "context", "Administrator", True),
        (CONTEXT + "ContentDeveloper", "context", "Content developer", True),
        (CONTEXT + "Mentor", "context", "Mentor", False),
        (CONTEXT + "Member", "context", "Member", False),
        (LIS + "membership/Instructor#TeachingAssistant", "context", "Teaching assistant", True),
        (LIS + "membership/Learner#NonCreditLearner", "context", "Non credit learner", False),
        (INSTITUTION + "Administrator", "institution", "Administrator", True),
        (INSTITUTION + "Faculty", "institution", "Faculty", True),
        (INSTITUTION + "Student", "institution", "Student", False),
        (INSTITUTION + "Guest", "institution", "Guest", False),
        (SYSTEM + "Administrator", "system", "Administrator", True),
        (SYSTEM + "SysAdmin", "system", "Sys admin", True),
        (SYSTEM + "User", "system", "User", False),
        ("Instructor", "context", "Instructor", True),  # a bare context role (appendix A.2.3)
        ("Learner", "context", "Learner", False),
        ("urn:example:role#Instructor", "unknown", "urn:example:role#Instructor", False),
        (CONTEXT, "unknown", CONTEXT, False),
    ],
)
def test_each_role_has_one_vocabulary_one_display_name_and_a_staff_verdict(
    uri, vocabulary, display, staff
):
    role = parse_role(uri)
    assert (role.vocabulary, role.display_name, role.is_staff) == (vocabulary, display, staff)


@pytest.mark.parametrize(
    ("claim", "names", "staff"),
    [
        # Moodle's site administrator teaching a course: institution and system Administrator.
        (
            [INSTITUTION + "Administrator", CONTEXT + "Instructor", SYSTEM + "Administrator"],
            ["Administrator", "Instructor"],
            True,
        ),
        ([CONTEXT + "Instructor", "Instructor"], ["Instructor"], True),
        ([CONTEXT + "Learner"], ["Learner"], False),
        (
            [CONTEXT + "Learner", INSTITUTION + "Student", SYSTEM + "User"],
            ["Learner", "Student", "User"],
            False,
        ),
        ([CONTEXT + "Learner", INSTITUTION + "Instructor"], ["Learner", "Instructor"], True),
        ([], [], False),
        ([None, 7, CONTEXT + "Mentor"], ["Mentor"], False),
        ("not a list", [], False),
    ],
)
def test_roles_are_listed_once_by_name_and_anyone_not_staff_is_a_learner(claim, names, staff):
    roles = parse_roles(claim)
    assert display_names(roles) == names
    assert is_staff(roles) is staff


@pytest.mark.parametrize(
    ("build", "release"),
    [
        ("2024100706", "4.5"),
        ("2024100700.00", "4.5"),
        ("2024042200", "4.4"),
        ("2024042211.02", "4.4"),
        ("2023100900", "4.3"),
        ("2023042400", "4.2"),
        ("2022112800", "4.1"),
        ("2022041900", "4.0"),
        ("2021051700", "3.11"),
        ("2020110900", "3.10"),
        ("2020061500", "3.9"),
        ("2019052000", "3.7"),
        ("2025041400", "5.0"),
        ("2024092000", None),  # a development build between branches
        ("20241007", None),
        ("4.5.6 (Build: 20250811)", None),
        ("", None),
    ],
)
def test_moodle_build_numbers_map_to_their_release(build, release):
    assert release_for_build(build) == release


@pytest.mark.parametrize(
    ("code", "version", "shown"),
    [
        ("moodle", "4.5.6 (Build: 20250811)", "4.5.6"),
        ("moodle", "4.5.5+ (Build: 20250718)", "4.5.5+"),
        ("moodle", "2024100706", "4.5"),
        ("moodle", "2099010100", "2099010100"),  # unknown: the raw value
        ("moodle", "3.10.1 (Build: 20210118)", "3.10.1"),
        ("canvas", "cloud", "cloud"),
        ("sakai", "23.3", "23.3"),
        (None, " 1.0 ", "1.0"),
    ],
)
def test_each_lms_shows_its_version_as_a_release(code, version, shown):
    family = for_family(code) if code else GENERIC
    assert family.release(version) == shown


def test_without_a_stored_release_the_page_maps_moodles_launch_build_to_its_release():
    platform = SimpleNamespace(product_family_code="moodle", version=None)
    claims = {
        CLAIM_DEPLOYMENT_ID: "1",
        CLAIM_MESSAGE_TYPE: "LtiResourceLinkRequest",
        CLAIM_ROLES: [CONTEXT + "Instructor"],
        CLAIM_TOOL_PLATFORM: {"product_family_code": "moodle", "version": "2024100706"},
    }
    page = verified_page(claims, platform)
    assert (page["family_name"], page["lms_release"]) == ("Moodle", "4.5")
    assert page["lms_versions_reported"] == ["2024100706"]


def test_a_learners_page_is_given_nothing_about_the_user_or_the_registration():
    platform = SimpleNamespace(product_family_code="moodle", version="4.5.6 (Build: 20250811)")
    claims = {
        "sub": "user-1",
        "email": "sam@example.edu",
        CLAIM_DEPLOYMENT_ID: "1",
        CLAIM_MESSAGE_TYPE: "LtiResourceLinkRequest",
        CLAIM_ROLES: [CONTEXT + "Learner"],
    }
    assert verified_page(claims, platform) == {"for_staff": False, "family_name": "Moodle"}
