package objectstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// Admin gives each connector credentials of its own, through the store's IAM API:
// a user per connector whose one policy lets it write and read objects under one
// prefix of the bucket, and list the uploads there, and nothing else. Revoking a
// connector's user ends its access without touching any other connector's.
type Admin struct {
	IAM    *iam.Client
	Bucket string
}

// NewAdmin connects to the store's IAM API with the admin's credentials in cfg. It
// sends nothing until it is used.
func NewAdmin(cfg Config) (*Admin, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Admin{IAM: iam.New(iam.Options{
		Region:       cfg.region(),
		Credentials:  cfg.credentials(),
		BaseEndpoint: nilIfEmpty(cfg.Endpoint),
	}), Bucket: cfg.Bucket}, nil
}

// policyName is the name of the one policy a connector's user has.
const policyName = "pmo-connector-prefix"

// Grant makes (or reuses) the user and sets its policy to the prefix, then gives it a
// new access key, removing any key it had: a connector started again gets fresh
// credentials and its earlier ones stop working.
func (a *Admin) Grant(ctx context.Context, user, prefix string) (accessKey, secretKey string, err error) {
	prefix = strings.Trim(prefix, "/")
	if user == "" || prefix == "" {
		return "", "", errors.New("objectstore: a user and a prefix are required")
	}
	if _, err := a.IAM.CreateUser(ctx, &iam.CreateUserInput{UserName: &user}); err != nil {
		var exists *types.EntityAlreadyExistsException
		if !errors.As(err, &exists) {
			return "", "", fmt.Errorf("objectstore: create user %s: %w", user, err)
		}
	}
	doc, err := prefixPolicy(a.Bucket, prefix)
	if err != nil {
		return "", "", err
	}
	if _, err := a.IAM.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: &user, PolicyName: aws.String(policyName),
		PolicyDocument: &doc}); err != nil {
		return "", "", fmt.Errorf("objectstore: set the policy of %s: %w", user, err)
	}
	if err := a.deleteKeys(ctx, user); err != nil {
		return "", "", err
	}
	out, err := a.IAM.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: &user})
	if err != nil {
		return "", "", fmt.Errorf("objectstore: create an access key for %s: %w", user, err)
	}
	return aws.ToString(out.AccessKey.AccessKeyId), aws.ToString(out.AccessKey.SecretAccessKey), nil
}

// Revoke removes the user, its keys and its policy; a user that is not there is no
// error.
func (a *Admin) Revoke(ctx context.Context, user string) error {
	if err := a.deleteKeys(ctx, user); err != nil {
		if noEntity(err) {
			return nil
		}
		return err
	}
	if _, err := a.IAM.DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: &user, PolicyName: aws.String(policyName)}); err != nil && !noEntity(err) {
		return fmt.Errorf("objectstore: delete the policy of %s: %w", user, err)
	}
	if _, err := a.IAM.DeleteUser(ctx, &iam.DeleteUserInput{UserName: &user}); err != nil && !noEntity(err) {
		return fmt.Errorf("objectstore: delete user %s: %w", user, err)
	}
	return nil
}

func (a *Admin) deleteKeys(ctx context.Context, user string) error {
	keys, err := a.IAM.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: &user})
	if err != nil {
		return fmt.Errorf("objectstore: list the keys of %s: %w", user, err)
	}
	for _, k := range keys.AccessKeyMetadata {
		if _, err := a.IAM.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: &user, AccessKeyId: k.AccessKeyId}); err != nil && !noEntity(err) {
			return fmt.Errorf("objectstore: delete a key of %s: %w", user, err)
		}
	}
	return nil
}

func noEntity(err error) bool {
	var missing *types.NoSuchEntityException
	return errors.As(err, &missing)
}

// prefixPolicy allows the object operations of an upload under bucket/prefix/, and
// listing the bucket's uploads, which S3 grants per bucket.
func prefixPolicy(bucket, prefix string) (string, error) {
	type statement struct {
		Effect   string
		Action   []string
		Resource []string
	}
	doc := struct {
		Version   string
		Statement []statement
	}{Version: "2012-10-17", Statement: []statement{
		{Effect: "Allow", Action: []string{"s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"},
			Resource: []string{"arn:aws:s3:::" + bucket + "/" + prefix + "/*"}},
		{Effect: "Allow", Action: []string{"s3:ListBucketMultipartUploads"}, Resource: []string{"arn:aws:s3:::" + bucket}},
	}}
	b, err := json.Marshal(doc)
	return string(b), err
}
