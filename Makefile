# Gatehouse: `make run` serves the demo on http://127.0.0.1:8000, `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed

# The demo configuration: environment variables only, as on a Heroku-style deploy.
DEMO_ENV := GATEHOUSE_TOOL__NAME="Gatehouse demo tool" \
	GATEHOUSE_TOOL__DESCRIPTION="A demonstration tool registered by Gatehouse." \
	GATEHOUSE_TOOL__SCOPES='["https://purl.imsglobal.org/spec/lti-ags/scope/score", "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem", "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"]' \
	GATEHOUSE_SECURITY__ALLOW_INSECURE_PLATFORMS=true \
	GATEHOUSE_SECURITY__ISSUER_CHECK=strict

.PHONY: install run test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(DEMO_ENV) HOST=127.0.0.1 PORT=$(PORT) $(BIN)/gunicorn -c python:app.gunicorn_config wsgi:app

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) build *.egg-info
