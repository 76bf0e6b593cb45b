"""Forms of the gate pages (Flask-WTF: CSRF on every one)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length

from ...domain.accounts import MIN_PASSWORD_LENGTH


class SigninForm(FlaskForm):
    """E-mail and password of an existing account."""

    email = EmailField(_l("E-mail address"), validators=[DataRequired(), Email()])
    password = PasswordField(_l("Password"), validators=[DataRequired()])


class SignupForm(FlaskForm):
    """A new account, when the tool owner allows self sign-up."""

    name = StringField(_l("Your name"), validators=[DataRequired(), Length(max=200)])
    email = EmailField(_l("E-mail address"), validators=[DataRequired(), Email(), Length(max=320)])
    password = PasswordField(
        _l("Password"),
        validators=[
            DataRequired(),
            # WTForms fills in %(min)d.
            Length(min=MIN_PASSWORD_LENGTH, message=_l("Use at least %(min)d characters.")),
        ],
    )
    confirm = PasswordField(
        _l("Repeat the password"),
        validators=[DataRequired(), EqualTo("password", message=_l("The passwords differ."))],
    )


class ContinueForm(FlaskForm):
    """Continue as the account already signed in."""


class TermsForm(FlaskForm):
    """Explicit acceptance of the terms and the signer's name."""

    accept = BooleanField(
        _l("I have read and accept these terms"),
        validators=[DataRequired(message=_l("Tick the box to accept the terms."))],
    )
    signer_name = StringField(
        _l("Your full name"),
        validators=[DataRequired(message=_l("Type your name to sign.")), Length(max=200)],
    )


class TermsByEmailForm(TermsForm):
    """Acceptance when no account approves the registration: the signer's e-mail says who."""

    email = EmailField(
        _l("Your e-mail address"),
        filters=[lambda value: value.strip() if value else value],
        validators=[
            DataRequired(message=_l("Type your e-mail address.")),
            Email(message=_l("Type a valid e-mail address, like name@school.edu.")),
            Length(max=320),
        ],
    )
