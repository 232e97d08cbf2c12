"""Emits a START, a COMPLETE and a FAIL run of two jobs to a Stemma node with
the real openlineage-python client (HTTP transport, gzip), as Airflow or dbt
would. Used by tests/tests/openlineage.rs; prints nothing on success.

usage: python3 emit.py http://127.0.0.1:PORT API_KEY
"""

import sys
import uuid
from datetime import datetime, timezone

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    error_message_run,
    schema_dataset,
    sql_job,
)
from openlineage.client.transport.http import (
    ApiKeyTokenProvider,
    HttpCompression,
    HttpConfig,
    HttpTransport,
)

url, key = sys.argv[1], sys.argv[2]
config = HttpConfig(
    url=url,
    auth=ApiKeyTokenProvider({"apiKey": key}),
    compression=HttpCompression.GZIP,
    timeout=10.0,
)
client = OpenLineageClient(transport=HttpTransport(config))
PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.0.0/client/python"
NS = "postgres://warehouse:5432"


def now():
    return datetime.now(timezone.utc).isoformat()


orders = InputDataset(
    namespace=NS,
    name="sales.orders",
    facets={
        "schema": schema_dataset.SchemaDatasetFacet(
            fields=[
                schema_dataset.SchemaDatasetFacetFields(name="id", type="INTEGER"),
                schema_dataset.SchemaDatasetFacetFields(name="amount", type="NUMERIC"),
            ]
        )
    },
)
revenue = OutputDataset(
    namespace=NS,
    name="marts.revenue",
    facets={
        "schema": schema_dataset.SchemaDatasetFacet(
            fields=[schema_dataset.SchemaDatasetFacetFields(name="total", type="NUMERIC")]
        ),
        "columnLineage": column_lineage_dataset.ColumnLineageDatasetFacet(
            fields={
                "total": column_lineage_dataset.Fields(
                    inputFields=[
                        column_lineage_dataset.InputField(
                            namespace=NS, name="sales.orders", field="amount"
                        )
                    ],
                    transformationType="AGGREGATION",
                    transformationDescription="sum",
                )
            }
        ),
    },
)
load = Job(
    namespace="airflow",
    name="revenue_daily",
    facets={
        "sql": sql_job.SQLJobFacet(
            query="INSERT INTO marts.revenue (total) SELECT sum(amount) FROM sales.orders"
        )
    },
)

run = Run(runId=str(uuid.uuid4()))
for state in (RunState.START, RunState.COMPLETE):
    client.emit(
        RunEvent(eventType=state, eventTime=now(), run=run, job=load, producer=PRODUCER,
                 inputs=[orders], outputs=[revenue])
    )

report = Job(namespace="airflow", name="revenue_report")
failed = Run(
    runId=str(uuid.uuid4()),
    facets={
        "errorMessage": error_message_run.ErrorMessageRunFacet(
            message="division by zero", programmingLanguage="python"
        )
    },
)
board = OutputDataset(namespace=NS, name="reports.board")
client.emit(RunEvent(eventType=RunState.START, eventTime=now(), run=Run(runId=failed.runId),
                     job=report, producer=PRODUCER, inputs=[InputDataset(namespace=NS, name="marts.revenue")],
                     outputs=[board]))
client.emit(RunEvent(eventType=RunState.FAIL, eventTime=now(), run=failed, job=report,
                     producer=PRODUCER, inputs=[InputDataset(namespace=NS, name="marts.revenue")],
                     outputs=[board]))
client.close() if hasattr(client, "close") else None
