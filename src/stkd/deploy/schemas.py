"""The service's request and response bodies (pydantic), and how a raw body is parsed into one.

Readings are finite numbers or null ("missing"): NaN and Infinity are not JSON and are refused.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional, Union

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

Reading = Optional[Annotated[float, Field(allow_inf_nan=False, strict=True)]]
ReadingOrVector = Union[Reading, Annotated[list[Reading], Field(max_length=1024)]]


class ObservationsIn(BaseModel):
    """Readings of one timestamp. ``readings`` maps node id -> value (a list of F values for a model
    with several input features); null marks a reading as missing."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"timestamp": "2012-03-08 00:00", "readings": {"773869": 64.2, "767541": None}}]})
    timestamp: str = Field(max_length=64, description="on the data's grid, e.g. 2012-03-08 00:05")
    readings: dict[str, ReadingOrVector] = Field(min_length=1, description="node id -> reading")


class PredictIn(BaseModel):
    """A whole input window: ``values`` maps every node id -> its P readings (oldest first; null = missing;
    lists of F values per step for a model with several input features; a model with lagged inputs takes
    ``history_len`` readings, back to its longest lag: ``GET /metadata``). Give ``timestamps`` (as many)
    or ``end`` (the last input step)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"end": "2012-03-08 00:55", "values": {"773869": [64.1, 63.9, None, 62.0]}}]})
    timestamps: list[Annotated[str, Field(max_length=64)]] | None = Field(default=None, max_length=100_000)
    end: str | None = Field(default=None, max_length=64)
    values: dict[str, list[ReadingOrVector]] = Field(min_length=1)
    nodes: list[str] | None = Field(default=None, description="return only these nodes' forecasts")


class ObservationsOut(BaseModel):
    accepted: int
    timestamp: str
    window_steps: int = Field(description="steps seen so far, up to P")
    ready: bool = Field(description="whether a full window exists (GET /forecast works)")


class ForecastOut(BaseModel):
    """``values[node][h]`` is the forecast for ``target_times[h]`` (original units); a list over
    ``targets`` per step for several targets, and class probabilities for an event model."""

    model: str
    issued_at: str
    freq: str
    horizon: int
    target_times: list[str]
    targets: list[str]
    classes: int
    values: dict[str, list[Any]]
    threshold: float | None = Field(default=None, description="2-class event models: the decision threshold "
                                                              "chosen on validation data")
    alarms: dict[str, list[bool]] | None = Field(default=None, description="2-class event models: "
                                                 "P(event) >= threshold, per node and horizon step")


class HealthOut(BaseModel):
    status: str = Field(description="ok, or degraded when the last save of the rolling window failed "
                                    "(posts get 503 until a save works again)")
    reason: str | None = Field(default=None, description="why the service is degraded")
    model: str
    backend: str
    ready: bool


class AdminOut(BaseModel):
    latest: str | None = Field(description="the newest step of the window after the change (null: empty)")
    window_steps: int
    ready: bool
    dropped: int = Field(description="readings (step, node) removed")
    backup: str | None = Field(description="the copy of the state file made before the change (its name)")


class ErrorOut(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorOut} for code in (401, 403, 404, 409, 413, 422, 503)}


def parse_body(raw: bytes, model: type[BaseModel]):
    """The request body validated as ``model``; errors go to the 422 handler like FastAPI's own."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as e:
        raise RequestValidationError(e.errors(include_input=False, include_url=False)) from None


def body_schema(model: type[BaseModel]) -> dict:
    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": model.model_json_schema()}}}}
