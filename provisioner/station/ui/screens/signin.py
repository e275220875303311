"""Sign-in screen: operator ID and PIN, errors in the operator's words."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Label, Static

from provisioner.station.ui.messages import QuitRequested, SignInSubmitted

MIN_PIN_LENGTH = 4  # the site's lower bound (wire.SessionRequest)


class SignInScreen(Screen[None]):
    """Ask for operator ID and PIN; post ``SignInSubmitted`` on Enter in the PIN field."""

    BINDINGS = [Binding("escape", "quit_station", "Quit", id="signin.quit")]

    error: reactive[str] = reactive("")
    busy: reactive[bool] = reactive(False)

    def __init__(self, *, cursor_blink: bool = True) -> None:
        super().__init__(id="signin")
        self._cursor_blink = cursor_blink

    def compose(self) -> ComposeResult:
        """Lay out the form."""
        yield Header()
        with Vertical(id="signin-form"):
            yield Static("Sign in to start production", id="signin-title")
            yield Label("Operator ID")
            yield Input(placeholder="e.g. operator-1", id="operator-id",
                        max_length=64, select_on_focus=False)
            yield Label("PIN")
            yield Input(placeholder="your PIN", password=True, id="pin", max_length=64,
                        select_on_focus=False)
            yield Static("", id="signin-error")
            yield Static("Enter moves on and signs in", id="signin-hint")
        yield Footer()

    def on_mount(self) -> None:
        """Apply the blink setting and focus the operator field."""
        for field in self.query(Input):
            field.cursor_blink = self._cursor_blink
        self.query_one("#operator-id", Input).focus()

    @on(Input.Submitted, "#operator-id")
    def _next_field(self) -> None:
        self.query_one("#pin", Input).focus()

    @on(Input.Submitted, "#pin")
    def _submit(self) -> None:
        if self.busy:
            return
        operator_field = self.query_one("#operator-id", Input)
        pin_field = self.query_one("#pin", Input)
        operator_id = operator_field.value.strip()
        if not operator_id:
            self.error = "Type your operator ID first."
            operator_field.focus()
            return
        if len(pin_field.value) < MIN_PIN_LENGTH:
            self.error = f"Your PIN has at least {MIN_PIN_LENGTH} characters."
            return
        pin = pin_field.value
        pin_field.value = ""
        self.error = ""
        self.busy = True
        self.post_message(SignInSubmitted(operator_id, pin))

    def action_quit_station(self) -> None:
        """Quit the station."""
        self.post_message(QuitRequested())

    def watch_busy(self, busy: bool) -> None:
        """Say that the site is being asked."""
        if busy:
            self.query_one("#signin-error", Static).update("Signing in…")

    def watch_error(self, error: str) -> None:
        """Show the latest error and let the operator try again."""
        if error:
            self.busy = False
        self.query_one("#signin-error", Static).update(error)
