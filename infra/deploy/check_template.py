"""Checks template.yaml against what the code expects, beyond what cfn-lint sees.

cfn-lint validates CloudFormation; it does not know that the WebSocket API must
be a WEBSOCKET one, that the tables must have exactly the keys, index and stream
the store uses, or that each function must name a binary of this workspace.
Nor does it know which metrics the webhook function logs (EMF): with --emf,
the lines tests/runtime.rs captured from it, the alarms must watch those.
Exit status 1 with every mismatch listed; 0 when the template agrees.

Usage: python check_template.py TEMPLATE WORKSPACE_ROOT [--emf EMF_JSONL]
"""

import argparse
import json
import pathlib
import sys
import tomllib

from cfnlint.decode import decode

problems = []


def expect(condition, message):
    if not condition:
        problems.append(message)


def ref(value):
    """The logical id a !Ref, !GetAtt or 'integrations/${X}' !Sub points at."""
    if isinstance(value, dict):
        if "Fn::If" in value:
            # The branch the stack takes by default (its own resources).
            return ref(value["Fn::If"][1])
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return (target if isinstance(target, list) else target.split("."))[0]
        if "Fn::Sub" in value:
            names = [part.split("}", 1)[0].split(".")[0] for part in value["Fn::Sub"].split("${")[1:]]
            return next((n for n in names if not n.startswith("AWS::")), None)
    return value


def sub_text(value):
    """The text of a !Sub (either form), or a plain string as it is."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return sub[0] if isinstance(sub, list) else sub
    return value if isinstance(value, str) else None


def watched(props):
    """The metrics an alarm's properties watch: its own, or its math's MetricStats."""
    if "MetricName" in props:
        return [props]
    return [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]


# The alert rules (shared/src/alerts/rules.rs, Rule::name): a public contract.
RULES = ["silence", "refused", "failures", "store"]


def emitted_metrics(path):
    """{(namespace, dimension names): metric names} of the EMF records in a JSON-lines file.

    Each dimension set of a record is a metric of its own in CloudWatch; a
    metric or dimension whose value the record lacks is dropped, as CloudWatch
    drops it. Returns the map and the number of EMF records read.
    """
    emitted, records = {}, 0
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict) or "_aws" not in record:
            continue
        records += 1
        for directive in record["_aws"].get("CloudWatchMetrics", []):
            names = {m["Name"] for m in directive.get("Metrics", []) if m.get("Name") in record}
            for dimensions in directive.get("Dimensions") or [[]]:
                if all(d in record for d in dimensions):
                    key = (directive.get("Namespace"), frozenset(dimensions))
                    emitted.setdefault(key, set()).update(names)
    return emitted, records


def main(template_path, root, emf_path=None):
    template, matches = decode(str(template_path))
    if matches:
        sys.exit(f"{template_path} does not parse: {matches}")
    resources = template["Resources"]
    of_type = lambda t: {k: v for k, v in resources.items() if v["Type"] == t}

    # Tables: exactly what store::dynamodb creates (create_tables).
    tables = of_type("AWS::DynamoDB::Table")
    events = tables.get("EventsTable", {}).get("Properties", {})
    expect([k["AttributeName"] for k in events.get("KeySchema", [])] == ["pk", "sk"], "events table keys are pk, sk")
    indexes = {i["IndexName"]: i for i in events.get("GlobalSecondaryIndexes", [])}
    gsi1 = indexes.get("gsi1", {})
    expect([k["AttributeName"] for k in gsi1.get("KeySchema", [])] == ["gsi1pk", "gsi1sk"], "index gsi1 on gsi1pk, gsi1sk")
    expect(gsi1.get("Projection", {}).get("ProjectionType") == "INCLUDE", "gsi1 projects INCLUDE")
    expect(sorted(gsi1.get("Projection", {}).get("NonKeyAttributes", [])) == ["data", "inbound_ms", "search", "type"],
           "gsi1 includes data, type, search, inbound_ms")
    expect(events.get("StreamSpecification", {}).get("StreamViewType") == "NEW_IMAGE", "events stream is NEW_IMAGE")
    expect(events.get("TimeToLiveSpecification") == {"AttributeName": "expires_at", "Enabled": True}, "events TTL on expires_at")
    expect(events.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") is True, "events table has PITR")
    expect(events.get("BillingMode") == "PAY_PER_REQUEST", "events table is on-demand")
    connections = tables.get("ConnectionsTable", {}).get("Properties", {})
    expect([k["AttributeName"] for k in connections.get("KeySchema", [])] == ["connection_id"], "connections keyed by connection_id")
    expect(connections.get("TimeToLiveSpecification") == {"AttributeName": "expires_at", "Enabled": True}, "connections TTL on expires_at")

    # Functions: every one a binary of this workspace, built and run the same way.
    members = tomllib.loads((root / "Cargo.toml").read_text())["workspace"]["members"]
    binaries = {tomllib.loads((root / m / "Cargo.toml").read_text())["package"]["name"] for m in members if m.startswith("functions/")}
    functions = of_type("AWS::Serverless::Function")
    built = {f["Metadata"]["BuildProperties"]["Binary"]: name for name, f in functions.items()
             if f.get("Metadata", {}).get("BuildMethod") == "rust-cargolambda"}
    expect(set(built) == binaries, f"functions build exactly the workspace's {sorted(binaries)}, got {sorted(built)}")
    globals_ = template.get("Globals", {}).get("Function", {})
    for name, function in functions.items():
        props = {**globals_, **function["Properties"]}
        expect(props.get("Runtime") == "provided.al2023", f"{name} runs on provided.al2023")
        expect(props.get("Architectures") == ["arm64"], f"{name} is arm64")
        expect(props.get("LoggingConfig", {}).get("LogFormat") == "JSON", f"{name} logs JSON")
        expect("LogGroup" in props.get("LoggingConfig", {}), f"{name} logs to a group with retention")

    # Variables: a function whose main opens the store reads what StoreConfig
    # reads (shared/src/config.rs), from Globals merged with its own, as SAM does.
    member_of = {tomllib.loads((root / m / "Cargo.toml").read_text())["package"]["name"]: m
                 for m in members if m.startswith("functions/")}
    global_variables = globals_.get("Environment", {}).get("Variables", {})
    for binary, name in built.items():
        main = (root / member_of[binary] / "src" / "main.rs").read_text()
        own = functions[name]["Properties"].get("Environment", {}).get("Variables", {})
        variables = {**global_variables, **own}
        if "StoreConfig" in main:
            for variable in ["EVENTS_TABLE", "RETENTION_DAYS"]:
                expect(variable in variables, f"{name} opens the store and is given {variable}")

    # Alarms: only metrics that exist with the dimensions given. DynamoDB
    # publishes these per table *and operation*: with TableName alone they never
    # have data, and the alarm never fires.
    per_operation = {"ThrottledRequests", "SuccessfulRequestLatency", "SystemErrors", "ReturnedItemCount", "ReturnedBytes"}
    alarms = of_type("AWS::CloudWatch::Alarm")
    for name, alarm in alarms.items():
        props = alarm["Properties"]
        metrics = watched(props)
        expect(metrics, f"{name} watches a metric")
        for metric in metrics:
            dimensions = {d["Name"] for d in metric.get("Dimensions", [])}
            if metric.get("Namespace") == "AWS/DynamoDB" and metric.get("MetricName") in per_operation:
                expect("Operation" in dimensions, f"{name}: {metric['MetricName']} needs the Operation dimension")
        # Someone is told when it starts and when it is over (alert-notify
        # posts both, as the local notifier does).
        expect(props.get("AlarmActions"), f"{name} has AlarmActions")
        expect(props.get("OKActions"), f"{name} has OKActions")

    # The rule alarms: one per rule, named <stack>-<rule>, which is how the
    # metrics function finds them (ALERT_ALARM_PREFIX) and tells their rule.
    metrics_variables = functions.get("MetricsFunction", {}).get("Properties", {}).get("Environment", {}).get("Variables", {})
    prefix = sub_text(metrics_variables.get("ALERT_ALARM_PREFIX"))
    expect(prefix, "the metrics function is given ALERT_ALARM_PREFIX (for /api/webhook/alerts)")
    rule_alarms = {}
    for rule in RULES:
        named = [name for name, alarm in alarms.items()
                 if (sub_text(alarm["Properties"].get("AlarmName")) or "").endswith(f"-{rule}")]
        expect(len(named) == 1, f"exactly one alarm is named for the rule {rule} (AlarmName ending -{rule}), got {named}")
        if len(named) != 1:
            continue
        name = named[0]
        props = alarms[name]["Properties"]
        rule_alarms[name] = props
        alarm_name = sub_text(props["AlarmName"])
        if prefix:
            expect(alarm_name == prefix + rule, f"{name} is named ALERT_ALARM_PREFIX + {rule!r} ({prefix + rule!r}), got {alarm_name!r}")
        for key in ["AlarmActions", "OKActions"]:
            expect([ref(a) for a in props.get(key, [])] == ["AlarmTopic"], f"{name}'s {key} are the AlarmTopic")
        for metric in watched(props):
            expect(metric.get("Namespace") == "Pulse", f"{name} watches the webhook function's Pulse metrics, not {metric.get('Namespace')}")
    silence = [props for props in rule_alarms.values() if sub_text(props["AlarmName"]).endswith("-silence")]
    expect(all(props.get("TreatMissingData") == "breaching" for props in silence),
           "the silence alarm treats missing data as breaching (no POST logs no datapoint)")

    # The alarms' own metrics are those the webhook function logs: in a
    # namespace of its EMF records, under exactly one of its dimension sets.
    # The Stack dimension's value is the function's STACK_NAME.
    webhook_variables = functions.get("WebhookFunction", {}).get("Properties", {}).get("Environment", {}).get("Variables", {})
    expect("STACK_NAME" in webhook_variables, "the webhook function is given STACK_NAME (its metrics' Stack dimension)")
    custom = [(name, metric) for name, alarm in alarms.items() for metric in watched(alarm["Properties"])
              if not str(metric.get("Namespace", "")).startswith("AWS/")]
    other_stack = sorted({name for name, metric in custom for d in metric.get("Dimensions", [])
                          if d["Name"] == "Stack" and d["Value"] != webhook_variables.get("STACK_NAME")})
    expect(not other_stack, f"{other_stack}: the Stack dimension is the webhook function's STACK_NAME")
    if emf_path is not None:
        emitted, records = emitted_metrics(emf_path) if emf_path.is_file() else ({}, 0)
        expect(records, f"{emf_path} {'holds no EMF record' if emf_path.is_file() else 'does not exist'}: "
                        "tests/runtime.rs writes the webhook function's EMF lines there (run the tests first, `make test`)")
        if records:
            for name, metric in custom:
                namespace, metric_name = metric.get("Namespace"), metric.get("MetricName")
                dimensions = frozenset(d["Name"] for d in metric.get("Dimensions", []))
                expect(metric_name in emitted.get((namespace, dimensions), set()),
                       f"{name}: the webhook function logs no {namespace}/{metric_name} with the dimensions "
                       f"{sorted(dimensions)}; it logs {sorted((ns, sorted(d), sorted(m)) for (ns, d), m in emitted.items())}")

    # Alert notifications: the alert-notify function on the topic, given the URL.
    notify_name = built.get("alert-notify")
    expect(notify_name, "a function builds alert-notify")
    if notify_name:
        notify = functions[notify_name]["Properties"]
        topics = [ref(e["Properties"].get("Topic")) for e in notify.get("Events", {}).values() if e["Type"] == "SNS"]
        expect(topics == ["AlarmTopic"], f"{notify_name} runs on the AlarmTopic (one SNS event), got {topics}")
        expect("ALERT_WEBHOOK_URL" in notify.get("Environment", {}).get("Variables", {}),
               f"{notify_name} is given ALERT_WEBHOOK_URL")
    # The metrics function reads the rule alarms and their history.
    allowed = {action for statement in (s for p in functions.get("MetricsFunction", {}).get("Properties", {}).get("Policies", [])
                                        if isinstance(p, dict) for s in p.get("Statement", []))
               for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])}
    for action in ["cloudwatch:DescribeAlarms", "cloudwatch:DescribeAlarmHistory"]:
        expect(action in allowed, f"the metrics function may call {action}")

    # Timezone: every IANA zone passes the parameter's pattern, offsets and
    # free text do not (a bad PULSE_TIMEZONE stops the metrics function).
    timezone = template.get("Parameters", {}).get("Timezone", {})
    pattern = timezone.get("AllowedPattern")
    expect(pattern, "the Timezone parameter has an AllowedPattern")
    if pattern:
        import re
        import zoneinfo
        refused = [z for z in sorted(zoneinfo.available_timezones()) if not re.fullmatch(pattern, z)]
        expect(not refused, f"the Timezone pattern refuses IANA zones: {refused[:5]}")
        allowed = [t for t in ["+05:30", "UTC+5:30", "India Standard Time", "Asia/ Kolkata", ""] if re.fullmatch(pattern, t)]
        expect(not allowed, f"the Timezone pattern lets through {allowed}")

    # HTTP routes: those of the route table the local gateway dispatches by
    # (shared/src/routes.rs).
    import re
    table = (root / "shared" / "src" / "routes.rs").read_text()
    function_names = {"Webhook": "WebhookFunction", "Metrics": "MetricsFunction", "Dashboard": "DashboardFunction"}
    wanted = {(method, path, function_names[function])
              for method, path, function in re.findall(r'route\("(\w+)", "([^"]+)", Function::(\w+)\)', table)}
    expect(len(wanted) >= 8, f"shared/src/routes.rs lists the routes, found {sorted(wanted)}")
    routes = set()
    for name, function in functions.items():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "HttpApi":
                routes.add((event["Properties"]["Method"], event["Properties"]["Path"], name))
    expect(routes == wanted,
           f"HTTP routes match shared/src/routes.rs: missing {sorted(wanted - routes)}, extra {sorted(routes - wanted)}")
    # The page's live feed and its Content-Security-Policy need the WebSocket's URL.
    dashboard_variables = functions.get("DashboardFunction", {}).get("Properties", {}).get("Environment", {}).get("Variables", {})
    expect("WEBSOCKET_URL" in dashboard_variables, "the dashboard function is given WEBSOCKET_URL")

    # CORS: the parameter's pattern lets origin lists through, and nothing else.
    cors = template.get("Parameters", {}).get("CorsAllowedOrigins", {})
    cors_pattern = cors.get("AllowedPattern")
    expect(cors.get("Default") == "" and cors_pattern, "CorsAllowedOrigins defaults to none and has an AllowedPattern")
    if cors_pattern:
        import re
        good = ["", "https://ops.example.com", "https://a.example.com,http://127.0.0.1:5173"]
        bad = ["*", "ops.example.com", "https://ops.example.com/", "https://a.example.com, https://b.example.com",
               "https://ops.example.com/path", "https://a.example.com,"]
        expect(all(re.fullmatch(cors_pattern, g) for g in good), f"the CORS pattern takes {good}")
        let_through = [b for b in bad if re.fullmatch(cors_pattern, b)]
        expect(not let_through, f"the CORS pattern lets through {let_through}")

    # The WebSocket API: cfn-lint accepts any ProtocolType.
    apis = of_type("AWS::ApiGatewayV2::Api")
    expect(len(apis) == 1 and next(iter(apis.values()))["Properties"].get("ProtocolType") == "WEBSOCKET",
           "one ApiGatewayV2 Api, with ProtocolType WEBSOCKET")
    integrations = of_type("AWS::ApiGatewayV2::Integration")
    permissions = {ref(p["Properties"]["FunctionName"]): p["Properties"] for p in of_type("AWS::Lambda::Permission").values()}
    want = {"$connect": "ws-connect", "$disconnect": "ws-disconnect", "$default": "ws-default"}
    got = {}
    for name, route in of_type("AWS::ApiGatewayV2::Route").items():
        integration = integrations.get(ref(route["Properties"]["Target"]), {}).get("Properties", {})
        expect(integration.get("IntegrationType") == "AWS_PROXY", f"{name} is a Lambda proxy integration")
        function = ref(integration.get("IntegrationUri"))
        got[route["Properties"]["RouteKey"]] = functions.get(function, {}).get("Metadata", {}).get("BuildProperties", {}).get("Binary")
        permission = permissions.get(function, {})
        expect(permission.get("Principal") == "apigateway.amazonaws.com", f"API Gateway may invoke {function}")
    expect(got == want, f"WebSocket routes go to {want}, got {got}")
    default = [r for r in of_type("AWS::ApiGatewayV2::Route").values() if r["Properties"]["RouteKey"] == "$default"]
    expect(default and default[0]["Properties"].get("RouteResponseSelectionExpression") == "$default",
           "$default has a route response, so that its answer reaches the client")
    expect(of_type("AWS::ApiGatewayV2::RouteResponse"), "a RouteResponse for $default")
    expect(of_type("AWS::ApiGatewayV2::Stage") and of_type("AWS::ApiGatewayV2::Deployment"), "a stage and a deployment")

    # The broadcast function on the stream, as the issue lists.
    stream = [e["Properties"] for e in functions.get("BroadcastFunction", {}).get("Properties", {}).get("Events", {}).values()
              if e["Type"] == "DynamoDB"]
    expect(len(stream) == 1, "broadcast runs on one DynamoDB stream")
    if stream:
        s = stream[0]
        expect(ref(s.get("Stream")) == "EventsTable", "broadcast reads the events table's stream")
        for key in ["BatchSize", "MaximumBatchingWindowInSeconds", "MaximumRetryAttempts", "DestinationConfig"]:
            expect(key in s, f"broadcast's stream sets {key}")
        expect(s.get("BisectBatchOnFunctionError") is True, "bisect on error")
        expect(s.get("FunctionResponseTypes") == ["ReportBatchItemFailures"], "partial batch responses")

    # Secrets never have a default in the repo.
    for name in ["WhatsAppAppSecret", "WhatsAppVerifyToken", "DashboardToken", "ContactKeySecret"]:
        parameter = template["Parameters"].get(name, {})
        expect(parameter.get("NoEcho") is True and "Default" not in parameter, f"{name} is NoEcho without a default")
    for output in ["DashboardUrl", "WebhookUrl", "ApiUrl", "WebSocketUrl"]:
        expect(output in template.get("Outputs", {}), f"output {output}")

    for problem in problems:
        print(f"template.yaml: {problem}")
    print(f"template.yaml: {'agrees with the code' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("template", type=pathlib.Path)
    parser.add_argument("root", type=pathlib.Path, metavar="workspace_root")
    parser.add_argument("--emf", type=pathlib.Path, metavar="PATH",
                        help="JSON lines the webhook function wrote (tests/runtime.rs: target/test-logs/webhook-emf.jsonl)")
    arguments = parser.parse_args()
    sys.exit(main(arguments.template, arguments.root, arguments.emf))
