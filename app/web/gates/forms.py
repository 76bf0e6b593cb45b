"""Forms of the gate pages (Flask-WTF: CSRF on every one)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length

from ...domain.accounts import MIN_PASSWORD_LENGTH


class SigninForm(FlaskForm):
    """E-mail and password of an existing account."""

    email = EmailField("E-mail address", validators=[DataRequired(), Email()])
    password = PasswordField("Password", validators=[DataRequired()])


class SignupForm(FlaskForm):
    """A new account, when the tool owner allows self sign-up."""

    name = StringField("Your name", validators=[DataRequired(), Length(max=200)])
    email = EmailField("E-mail address", validators=[DataRequired(), Email(), Length(max=320)])
    password = PasswordField(
        "Password",
        validators=[
            DataRequired(),
            Length(
                min=MIN_PASSWORD_LENGTH, message=f"Use at least {MIN_PASSWORD_LENGTH} characters."
            ),
        ],
    )
    confirm = PasswordField(
        "Repeat the password",
        validators=[DataRequired(), EqualTo("password", message="The passwords differ.")],
    )


class ContinueForm(FlaskForm):
    """Continue as the account already signed in."""


class TermsForm(FlaskForm):
    """Explicit acceptance of the terms and the signer's name."""

    accept = BooleanField(
        "I have read and accept these terms",
        validators=[DataRequired(message="Tick the box to accept the terms.")],
    )
    signer_name = StringField(
        "Your full name",
        validators=[DataRequired(message="Type your name to sign."), Length(max=200)],
    )


class TermsByEmailForm(TermsForm):
    """Acceptance when no account approves the registration: the signer's e-mail says who."""

    email = EmailField(
        "Your e-mail address",
        filters=[lambda value: value.strip() if value else value],
        validators=[
            DataRequired(message="Type your e-mail address."),
            Email(message="Type a valid e-mail address, like name@school.edu."),
            Length(max=320),
        ],
    )
