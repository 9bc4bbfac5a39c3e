"""Web app pages for identity: first-owner set-up, log in, log out, home."""

from __future__ import annotations

from django import forms
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView, LogoutView
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from enclave.identity import actions


class OwnerForm(forms.Form):
    email = forms.EmailField(max_length=actions.MAX_EMAIL_LENGTH)
    password = forms.CharField(widget=forms.PasswordInput, strip=False,
                               max_length=actions.MAX_PASSWORD_LENGTH)


@require_http_methods(["GET", "POST"])
def setup_owner(request: HttpRequest, token: str) -> HttpResponse:
    if not actions.setup_token_valid(token):
        return render(request, "identity/setup_invalid.html", status=404)
    form = OwnerForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            member = actions.do_create_first_owner(
                token, form.cleaned_data["email"], form.cleaned_data["password"], request=request
            )
        except actions.SetupError:
            return render(request, "identity/setup_invalid.html", status=404)
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                for message in messages:
                    form.add_error(field, message)
        else:
            login(request, member)
            return redirect("app-home")
    return render(request, "identity/setup.html", {"form": form},
                  status=422 if request.method == "POST" else 200)


class MemberLoginView(LoginView):
    template_name = "identity/login.html"
    redirect_authenticated_user = True


class MemberLogoutView(LogoutView):
    next_page = "login"


@login_required(login_url="login")
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "identity/home.html")
